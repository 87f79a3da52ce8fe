"""The stream_am HTTP service: ``create_app(settings)`` and its settings.

The library (``stream_am``) never imports this package.
"""

from stream_am.server.app import create_app
from stream_am.server.settings import Settings

__all__ = ["Settings", "create_app"]
