"""Staff behaviour signals (scope `risk:signals`: vault and permissions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from kit.auth import Principal, RequireScope
from kit.db import DBSession
from services.risk.deps import Settings
from services.risk.staff import service
from services.risk.staff.schemas import StaffEventIn, StaffEventOut

internal = APIRouter(prefix="/internal/staff-events", tags=["staff"])


@internal.post("", response_model=StaffEventOut, status_code=status.HTTP_202_ACCEPTED, summary="A staff signal")
async def staff_event(
    body: StaffEventIn,
    session: DBSession,
    settings: Settings,
    caller: Annotated[Principal, Depends(RequireScope("risk:signals"))],
) -> StaffEventOut:
    """Personal-data reads, approvals, quota warnings; abnormal patterns suspend the person's
    high-risk permissions through permissions (once a day) and open a behaviour alert."""
    return await service.judge(session, settings, body, source=caller.subject)
