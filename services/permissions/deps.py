"""Request dependencies shared by the permissions routers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import RequireAcr
from kit.db import get_db_session
from services.permissions.approvals.service import InternalExecutor
from services.permissions.config import PermissionsSettings


async def get_settings(request: Request) -> PermissionsSettings:
    settings = request.app.state.settings
    assert isinstance(settings, PermissionsSettings)
    return settings


async def get_executors(request: Request) -> Mapping[str, InternalExecutor]:
    executors: Mapping[str, InternalExecutor] = request.app.state.internal_executors
    return executors


Settings = Annotated[PermissionsSettings, Depends(get_settings)]
Executors = Annotated[Mapping[str, InternalExecutor], Depends(get_executors)]

#: The request's unit of work, committed *before* the response is sent (function
#: scope): a client that has seen a 2xx can rely on the change being committed
#: and visible to its next call (the default request scope commits after sending).
DBSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]

#: Changing anyone's access needs a session that passed a second factor (the
#: gateway's route table asks the same; this is the service's own check).
StepUp = Depends(RequireAcr("aal2"))
