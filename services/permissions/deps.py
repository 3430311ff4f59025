"""Request dependencies shared by the permissions routers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import RequireAcr
from kit.db import own_transaction
from kit.errors import SuiteError
from services.permissions.approvals.service import InternalExecutor
from services.permissions.config import PermissionsSettings
from services.permissions.models import audit_log

logger = logging.getLogger("permissions")


async def get_settings(request: Request) -> PermissionsSettings:
    settings = request.app.state.settings
    assert isinstance(settings, PermissionsSettings)
    return settings


async def get_executors(request: Request) -> Mapping[str, InternalExecutor]:
    executors: Mapping[str, InternalExecutor] = request.app.state.internal_executors
    return executors


Settings = Annotated[PermissionsSettings, Depends(get_settings)]
Executors = Annotated[Mapping[str, InternalExecutor], Depends(get_executors)]

#: Changing anyone's access needs a session that passed a second factor (the
#: gateway's route table asks the same; this is the service's own check).
StepUp = Depends(RequireAcr("aal2"))


async def audit_refusal(
    request: Request,
    session: AsyncSession,
    *,
    actor: str,
    actor_kind: str,
    action: str,
    target: str | None,
    error: SuiteError,
) -> None:
    """Record a refused attempt (self-approval, SoD, replayed execution...) in its own transaction.

    The request's transaction rolls back with the error, so the refusal would
    otherwise leave no trace; refusals are what an auditor looks for first.
    """
    try:
        async with own_transaction(request, session) as own:
            await audit_log.append(
                own,
                actor=actor,
                actor_kind=actor_kind,
                action=action,
                target=target,
                outcome="refused",
                detail={"code": error.code},
            )
    except Exception:  # the refusal itself must still reach the caller
        logger.exception("could not audit a refused %s", action)
