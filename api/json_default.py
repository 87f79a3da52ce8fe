"""``JSONByDefault``: a request body sent without a ``content-type`` header is read as JSON.

Every body this service accepts is JSON, so a body without a content type is unambiguous; a body sent with
another content type (``curl -d`` sends ``application/x-www-form-urlencoded``) is answered with a 422 that
names the header to send (:mod:`stream_am.server.errors`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["JSONByDefault"]


class JSONByDefault:
    """Pure ASGI middleware: add ``content-type: application/json`` to HTTP requests that carry none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(k == b"content-type" for k, _ in scope["headers"]):
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)
