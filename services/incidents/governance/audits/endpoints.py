"""Staff routes of audits (read: audit:read; plan, record and follow up: audit:verify, the auditors' permission)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from kit.auth import StaffUser
from kit.db import DBSession
from services.incidents.governance.audits import service
from services.incidents.governance.audits.render import render_html, render_pdf
from services.incidents.governance.audits.schemas import (
    AuditCreate,
    AuditReport,
    AuditStatus,
    AuditView,
    ChainExportCreate,
    EvidenceCreate,
    EvidenceView,
    FindingCreate,
    FindingView,
    FollowUpCreate,
    RemediationCreate,
    RemediationView,
    StatusChange,
)
from services.incidents.governance.deps import AuditReader, AuditVerifier, Gateway, Settings, Today

staff = APIRouter(prefix="/staff/audits", tags=["audits"])

#: The report renders staff input: no script may run, nothing may be fetched.
REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@staff.post("", response_model=AuditView, status_code=201, dependencies=[AuditVerifier])
async def plan_audit(data: AuditCreate, staff_user: StaffUser, session: DBSession) -> AuditView:
    """Plan an audit: scope, period, auditors, criteria."""
    return await service.plan(session, data, actor=staff_user.subject)


@staff.get("", response_model=list[AuditView], dependencies=[AuditReader])
async def list_audits(session: DBSession, status: Annotated[AuditStatus | None, Query()] = None) -> list[AuditView]:
    return await service.list_audits(session, status)


@staff.get("/{audit_id}", response_model=AuditView, dependencies=[AuditReader])
async def get_audit(audit_id: uuid.UUID, session: DBSession) -> AuditView:
    return service.audit_view(await service.get_audit(session, audit_id))


@staff.post("/{audit_id}/status", response_model=AuditView, dependencies=[AuditVerifier])
async def change_status(
    audit_id: uuid.UUID, data: StatusChange, staff_user: StaffUser, session: DBSession
) -> AuditView:
    """Move the audit forward: fieldwork, reported (with the conclusion), closed (every finding closed)."""
    return await service.change_status(session, audit_id, data.status, data.conclusion, actor=staff_user.subject)


@staff.post("/{audit_id}/evidence", response_model=EvidenceView, status_code=201, dependencies=[AuditVerifier])
async def add_evidence(
    audit_id: uuid.UUID, data: EvidenceCreate, staff_user: StaffUser, session: DBSession
) -> EvidenceView:
    """Link evidence: a service's audit-chain entries, an export of a service's log (with its digest), a document."""
    return await service.add_evidence(session, audit_id, data, actor=staff_user.subject)


@staff.post("/{audit_id}/evidence/exports", response_model=EvidenceView, status_code=201, dependencies=[AuditVerifier])
async def export_evidence(
    *,
    audit_id: uuid.UUID,
    data: ChainExportCreate,
    staff_user: StaffUser,
    session: DBSession,
    client: Gateway,
    settings: Settings,
) -> EvidenceView:
    """Export a range of a service's audit-chain entries to a file (digest kept) and link it as evidence;
    the description says whether the range's hashes are intact."""
    return await service.export_chain_evidence(
        session, client, Path(settings.archive_dir), audit_id, data, actor=staff_user.subject
    )


@staff.post("/{audit_id}/findings", response_model=FindingView, status_code=201, dependencies=[AuditVerifier])
async def add_finding(
    audit_id: uuid.UUID, data: FindingCreate, staff_user: StaffUser, session: DBSession
) -> FindingView:
    return await service.add_finding(session, audit_id, data, actor=staff_user.subject)


@staff.get("/{audit_id}/findings", response_model=list[FindingView], dependencies=[AuditReader])
async def list_findings(audit_id: uuid.UUID, session: DBSession, today: Today) -> list[FindingView]:
    return await service.findings(session, audit_id, today)


@staff.post(
    "/findings/{finding_id}/remediations",
    response_model=RemediationView,
    status_code=201,
    dependencies=[AuditVerifier],
)
async def add_remediation(
    finding_id: uuid.UUID, data: RemediationCreate, staff_user: StaffUser, session: DBSession, today: Today
) -> RemediationView:
    """A remediation action with its owner and due date."""
    return await service.add_remediation(session, finding_id, data, actor=staff_user.subject, today=today)


@staff.post(
    "/remediations/{remediation_id}/follow-ups",
    response_model=RemediationView,
    status_code=201,
    dependencies=[AuditVerifier],
)
async def follow_up(
    remediation_id: uuid.UUID, data: FollowUpCreate, staff_user: StaffUser, session: DBSession, today: Today
) -> RemediationView:
    """Follow up: still open, done, or verified (closes the finding when every action is verified)."""
    return await service.follow_up(session, remediation_id, data, actor=staff_user.subject, today=today)


@staff.get("/{audit_id}/report", response_model=AuditReport, dependencies=[AuditReader])
async def report_json(audit_id: uuid.UUID, session: DBSession, today: Today) -> AuditReport:
    return await service.report(session, audit_id, today)


@staff.get(
    "/{audit_id}/report.html",
    response_class=Response,
    dependencies=[AuditReader],
    responses={200: {"content": {"text/html": {}}, "description": "The report as HTML."}},
)
async def report_html(audit_id: uuid.UUID, session: DBSession, today: Today) -> Response:
    report = await service.report(session, audit_id, today)
    return Response(render_html(report), media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)


@staff.get(
    "/{audit_id}/report.pdf",
    response_class=Response,
    dependencies=[AuditReader],
    responses={200: {"content": {"application/pdf": {}}, "description": "The report as PDF."}},
)
async def report_pdf(audit_id: uuid.UUID, session: DBSession, today: Today) -> Response:
    report = await service.report(session, audit_id, today)
    return Response(
        render_pdf(report),
        media_type="application/pdf",
        headers={**REPORT_HEADERS, "Content-Disposition": f'attachment; filename="audit-{audit_id}.pdf"'},
    )
