"""Staff routes of sampling audits (run: audit:verify; read: audit:read)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from kit.auth import StaffUser
from kit.db import DBSession
from services.incidents.governance.deps import AuditReader, AuditVerifier, Gateway, Settings
from services.incidents.governance.sampling import service
from services.incidents.governance.sampling.schemas import SamplingRequest, SamplingRunView

staff = APIRouter(prefix="/staff/audits/{audit_id}/sampling-runs", tags=["audits"])


@staff.post("", response_model=SamplingRunView, status_code=201, dependencies=[AuditVerifier])
async def run_sampling(
    *,
    audit_id: uuid.UUID,
    data: SamplingRequest,
    staff_user: StaffUser,
    session: DBSession,
    client: Gateway,
    settings: Settings,
) -> SamplingRunView:
    """Run a sampling audit over a period now; every exception becomes a finding of the audit."""
    return await service.run_sampling(session, client, settings, audit_id, data, actor=staff_user.subject)


@staff.get("", response_model=list[SamplingRunView], dependencies=[AuditReader])
async def list_runs(audit_id: uuid.UUID, session: DBSession) -> list[SamplingRunView]:
    return await service.runs(session, audit_id)
