"""Request dependencies shared by the incidents routers: settings, the clock, the workers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from kit.permissions import PermissionChecker
from services.incidents.clock import Clock
from services.incidents.config import IncidentsSettings


async def get_settings(request: Request) -> IncidentsSettings:
    settings = request.app.state.settings
    assert isinstance(settings, IncidentsSettings)
    return settings


async def get_now(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock()


async def get_permissions(request: Request) -> PermissionChecker:
    checker: PermissionChecker = request.app.state.permission_client
    return checker


async def wake_outbox(request: Request) -> None:
    """Ask the outbox worker for a round (run as a background task: after the commit)."""
    worker = getattr(request.app.state, "outbox_worker", None)
    if worker is not None:
        worker.wake()


Settings = Annotated[IncidentsSettings, Depends(get_settings)]
Now = Annotated[datetime, Depends(get_now)]
Permissions = Annotated[PermissionChecker, Depends(get_permissions)]
