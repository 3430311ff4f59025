"""Staff routes of retention (run a purge: system:maintain; read the runs: audit:read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kit.auth import StaffUser
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.incidents.governance.deps import AuditReader, Settings
from services.incidents.governance.retention import service
from services.incidents.governance.retention.schemas import RetentionRunView

staff = APIRouter(prefix="/staff/retention", tags=["retention"])


@staff.post(
    "/purges",
    response_model=list[RetentionRunView],
    status_code=201,
    dependencies=[Depends(RequirePermission("system:maintain"))],
)
async def purge(staff_user: StaffUser, session: DBSession, settings: Settings) -> list[RetentionRunView]:
    """Archive, then purge the governance records past their retention (the `purge` command does the same)."""
    return await service.purge_all(session, settings, actor=staff_user.subject)


@staff.get("/purges", response_model=list[RetentionRunView], dependencies=[AuditReader])
async def runs(session: DBSession, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[RetentionRunView]:
    """The latest purges with their archive files and digests."""
    return await service.recent(session, limit)
