"""HTTP routers: operations, learning and prediction, the model registry."""

from stream_am.server.routers.learning import router as learning_router
from stream_am.server.routers.models import router as models_router
from stream_am.server.routers.ops import router as ops_router

__all__ = ["learning_router", "models_router", "ops_router"]
