"""API-key check: ``Authorization: Bearer <key>``, compared in constant time, before any work.

A route is protected when it declares the dependency :func:`require_api_key`. :class:`ApiKeyGuard` (ASGI
middleware) checks those routes before the application runs, so the body of a protected request is never
read (nor parsed, nor counted against memory) without the key. The dependency repeats the check inside the
route, and :func:`check_api_key` serves routes protected only in some cases (``predict`` with ``ids``,
which stores data). With ``protect_reads`` the guard also closes every read (GET, HEAD) but those of
:data:`OPEN_PATHS`. Which endpoints are open is listed in ``docs/security.md``.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException, Request
from pydantic import SecretStr
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["OPEN_PATHS", "ApiKeyGuard", "check_api_key", "require_api_key"]

#: paths (and prefixes ending in "/") that stay open even when reads are closed: the health check, the
#: dashboard page and its static files, and the API documentation hold no model data (the dashboard asks for
#: the key and sends it with each of its data requests)
OPEN_PATHS = ("/health", "/dashboard", "/dashboard/config", "/static/", "/docs", "/docs/", "/redoc", "/openapi.json")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_DETAIL = "a valid API key is required"


def _authorised(key: SecretStr | None, header: str) -> bool:
    if key is None:
        return True
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.get_secret_value().encode())


def check_api_key(request: Request) -> None:
    """401 unless the configured key (if any) is presented."""
    if not _authorised(request.app.state.settings.api_key, request.headers.get("authorization", "")):
        raise HTTPException(status_code=401, detail=_DETAIL, headers=_CHALLENGE)


async def require_api_key(request: Request) -> None:
    """FastAPI dependency marking a route as protected (see :class:`ApiKeyGuard`)."""
    check_api_key(request)


def _endpoints(routes: list[Any]) -> Iterator[Any]:
    """The routes themselves, also inside included routers (FastAPI keeps those as one entry)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _endpoints(inner.routes)
        else:
            yield route


class ApiKeyGuard:
    """Answers 401 to a protected route without the key before the application (or its body) is touched."""

    def __init__(self, app: ASGIApp, api: Any, key: SecretStr | None, protect_reads: bool = False) -> None:
        self.app = app
        self.api = api  # the FastAPI application, whose routes say which are protected
        self.key = key
        self.protect_reads = protect_reads

    def _protected(self, scope: Scope) -> bool:
        if self.protect_reads and scope["method"] in ("GET", "HEAD") and not _is_open(scope["path"]):
            return True
        for route in _endpoints(self.api.router.routes):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                deps = getattr(route, "dependencies", [])
                return any(getattr(d, "dependency", None) is require_api_key for d in deps)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.key is not None and self._protected(scope):
            headers = dict(scope.get("headers", []))
            if not _authorised(self.key, headers.get(b"authorization", b"").decode("latin-1")):
                await JSONResponse({"detail": _DETAIL}, status_code=401, headers=_CHALLENGE)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_open(path: str) -> bool:
    return any(path.startswith(p) if p.endswith("/") else path == p for p in OPEN_PATHS)
