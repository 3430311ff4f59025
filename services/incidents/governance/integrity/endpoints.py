"""Staff routes of the suite-wide audit verification (permission audit:verify)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from kit.auth import StaffUser
from kit.db import DBSession
from services.incidents.governance.deps import AuditVerifier, Gateway, Settings
from services.incidents.governance.integrity import service
from services.incidents.governance.integrity.schemas import SuiteVerification

staff = APIRouter(prefix="/staff/audit/verifications", tags=["audit integrity"])


@staff.post("", response_model=SuiteVerification, status_code=201, dependencies=[AuditVerifier])
async def verify_all(
    staff_user: StaffUser, session: DBSession, client: Gateway, settings: Settings
) -> SuiteVerification:
    """Verify every service's audit chain and checkpoints now; the first bad entry per service."""
    return await service.run_verification(
        session, client, settings.audit_verify_services, actor=staff_user.subject, actor_kind="staff"
    )


@staff.get("", response_model=list[SuiteVerification], dependencies=[AuditVerifier])
async def recent_runs(session: DBSession, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[SuiteVerification]:
    """The latest verification runs, newest first."""
    return await service.recent(session, limit)
