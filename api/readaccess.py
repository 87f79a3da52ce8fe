"""Closed reads: with ``api_key`` and ``protect_reads`` set, every read needs the key as well.

The health check, the dashboard page and its static files, and the API documentation stay open: they
hold no model data (the dashboard asks for the key and sends it with each of its data requests).
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from stream_am.server.security import require_api_key

__all__ = ["OPEN_PATHS", "ReadAccess"]

#: paths (and prefixes ending in "/") that never need a key
OPEN_PATHS = ("/health", "/dashboard", "/dashboard/config", "/static/", "/docs", "/docs/", "/redoc", "/openapi.json")


def _is_open(path: str) -> bool:
    return any(path.startswith(p) if p.endswith("/") else path == p for p in OPEN_PATHS)


class ReadAccess:
    """ASGI middleware: GET and HEAD requests need the API key when the settings close reads.

    Writes are checked by their routes (:func:`stream_am.server.security.require_api_key`).
    """

    def __init__(self, app: ASGIApp, protect: bool) -> None:
        self.app = app
        self.protect = protect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.protect and scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not _is_open(
            scope["path"]
        ):
            try:
                await require_api_key(Request(scope))
            except HTTPException as exc:
                response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
