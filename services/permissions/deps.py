"""Request dependencies shared by the permissions routers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request

from services.permissions.approvals.service import InternalExecutor
from services.permissions.config import PermissionsSettings


def get_settings(request: Request) -> PermissionsSettings:
    settings = request.app.state.settings
    assert isinstance(settings, PermissionsSettings)
    return settings


def get_executors(request: Request) -> Mapping[str, InternalExecutor]:
    executors: Mapping[str, InternalExecutor] = request.app.state.internal_executors
    return executors


Settings = Annotated[PermissionsSettings, Depends(get_settings)]
Executors = Annotated[Mapping[str, InternalExecutor], Depends(get_executors)]
