"""The stream_am HTTP service: ``create_app(settings)`` and its settings.

The library (``stream_am``) never imports this package.
"""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
