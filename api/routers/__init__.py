"""HTTP routers: operations, learning and prediction, the model registry, the dashboard and the docs."""

from stream_am.server.routers.dashboard import router as dashboard_router
from stream_am.server.routers.docs import router as docs_router
from stream_am.server.routers.learning import router as learning_router
from stream_am.server.routers.models import router as models_router
from stream_am.server.routers.ops import router as ops_router

__all__ = ["dashboard_router", "docs_router", "learning_router", "models_router", "ops_router"]
