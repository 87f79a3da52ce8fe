"""Shared dependencies of the routers (``async``: FastAPI runs sync dependencies in its thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from stream_am.server.registry import Registry
from stream_am.server.settings import Settings

__all__ = ["RegistryDep", "SettingsDep", "get_registry", "get_settings"]


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
