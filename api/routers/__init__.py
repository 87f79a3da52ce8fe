"""HTTP routers: operations, learning and prediction, the model registry."""

from api.routers.learning import router as learning_router
from api.routers.models import router as models_router
from api.routers.ops import router as ops_router

__all__ = ["learning_router", "models_router", "ops_router"]
