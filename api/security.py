"""API-key check for writes: ``Authorization: Bearer <key>``, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

__all__ = ["require_api_key"]


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 unless the configured key (if any) is presented."""
    key = request.app.state.settings.api_key
    if key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise HTTPException(
            status_code=401, detail="a valid API key is required", headers={"WWW-Authenticate": "Bearer"}
        )
