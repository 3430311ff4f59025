"""Audits (M7): a plan with scope, period, auditors and criteria; evidence; findings rated by risk;
remediation with owner and due date; follow-ups until verified; a report.

An audit moves forward only: planned -> fieldwork -> reported (with a
conclusion) -> closed (once every finding is closed). A finding is
``remediating`` once it has a remediation action and ``closed`` when every
action is verified. A remediation still open (or done, not verified) after
its due date is overdue. Every step is appended to the audit chain.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import flush_pending
from kit.http import ServiceClient
from services.incidents.governance.audits import exports, repository
from services.incidents.governance.audits.schemas import (
    AuditCreate,
    AuditReport,
    AuditStatus,
    AuditView,
    ChainExportCreate,
    EvidenceCreate,
    EvidenceKind,
    EvidenceView,
    FindingCreate,
    FindingStatus,
    FindingView,
    FollowUpCreate,
    FollowUpView,
    LatestChainCheck,
    Rating,
    RemediationCreate,
    RemediationStatus,
    RemediationView,
)
from services.incidents.governance.errors import (
    AuditNotFound,
    FindingNotFound,
    InvalidState,
    RemediationNotFound,
)
from services.incidents.models import (
    AuditEvidence,
    AuditFinding,
    AuditFollowUp,
    AuditPlan,
    AuditRemediation,
    audit_log,
)

ORDER = [AuditStatus.planned, AuditStatus.fieldwork, AuditStatus.reported, AuditStatus.closed]


def audit_view(row: AuditPlan) -> AuditView:
    return AuditView(
        id=row.id,
        title=row.title,
        scope=row.scope,
        period_from=row.period_from,
        period_to=row.period_to,
        auditors=list(row.auditors),
        criteria=list(row.criteria),
        status=AuditStatus(row.status),
        conclusion=row.conclusion,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def plan(session: AsyncSession, data: AuditCreate, *, actor: str) -> AuditView:
    row = AuditPlan(
        id=uuid.uuid4(),
        title=data.title,
        scope=data.scope,
        period_from=data.period_from,
        period_to=data.period_to,
        auditors=data.auditors,
        criteria=data.criteria,
        status=AuditStatus.planned.value,
        created_by=actor,
    )
    await repository.add(session, row)
    await audit_log.append(
        session,
        actor=actor,
        action="audit.planned",
        target=str(row.id),
        detail={"period": [data.period_from.isoformat(), data.period_to.isoformat()], "auditors": len(data.auditors)},
    )
    return audit_view(row)


async def get_audit(session: AsyncSession, audit_id: uuid.UUID, *, lock: bool = False) -> AuditPlan:
    row = await repository.get_audit(session, audit_id, lock=lock)
    if row is None:
        raise AuditNotFound()
    return row


async def open_audit(session: AsyncSession, audit_id: uuid.UUID) -> AuditPlan:
    """The audit, locked, refusing changes once it is closed."""
    row = await get_audit(session, audit_id, lock=True)
    if row.status == AuditStatus.closed:
        raise InvalidState("the audit is closed")
    return row


async def list_audits(session: AsyncSession, status: AuditStatus | None) -> list[AuditView]:
    return [audit_view(row) for row in await repository.list_audits(session, status.value if status else None)]


async def change_status(
    session: AsyncSession, audit_id: uuid.UUID, status: AuditStatus, conclusion: str | None, *, actor: str
) -> AuditView:
    row = await get_audit(session, audit_id, lock=True)
    current = AuditStatus(row.status)
    if ORDER.index(status) != ORDER.index(current) + 1:
        raise InvalidState(f"an audit moves from {current} to the next state only")
    if status == AuditStatus.reported:
        if not conclusion:
            raise InvalidState("the report needs a conclusion")
        row.conclusion = conclusion
    if status == AuditStatus.closed:
        still_open = [f for f in await repository.findings(session, row.id) if f.status != FindingStatus.closed]
        if still_open:
            raise InvalidState(f"{len(still_open)} findings are not closed")
    row.status = status.value
    await flush_pending(session)
    await audit_log.append(
        session, actor=actor, action="audit.status_changed", target=str(row.id), detail={"from": current, "to": status}
    )
    return audit_view(row)


def evidence_view(row: AuditEvidence) -> EvidenceView:
    return EvidenceView.model_validate(row, from_attributes=True)


async def add_evidence(session: AsyncSession, audit_id: uuid.UUID, data: EvidenceCreate, *, actor: str) -> EvidenceView:
    audit = await open_audit(session, audit_id)
    row = AuditEvidence(
        id=uuid.uuid4(),
        audit_id=audit.id,
        kind=data.kind.value,
        service=data.service.value if data.service else None,
        seq_from=data.seq_from,
        seq_to=data.seq_to,
        uri=data.uri,
        sha256=data.sha256,
        description=data.description,
        added_by=actor,
    )
    await repository.add(session, row)
    await audit_log.append(
        session,
        actor=actor,
        action="audit.evidence_added",
        target=str(audit.id),
        detail={"evidence_id": str(row.id), "kind": row.kind, "service": row.service, "sha256": row.sha256},
    )
    return evidence_view(row)


async def export_chain_evidence(
    session: AsyncSession,
    client: ServiceClient,
    archive_dir: Path,
    audit_id: uuid.UUID,
    data: ChainExportCreate,
    *,
    actor: str,
) -> EvidenceView:
    """Export a service's audit entries into a file and link it, with its digest, as evidence."""
    audit = await open_audit(session, audit_id)
    export = await exports.export_chain(
        client, data.service.value, data.seq_from, data.seq_to, archive_dir / "evidence"
    )
    state = "intact" if export.first_bad_seq is None else f"not as written from entry {export.first_bad_seq}"
    row = AuditEvidence(
        id=uuid.uuid4(),
        audit_id=audit.id,
        kind=EvidenceKind.log_export.value,
        service=data.service.value,
        seq_from=data.seq_from,
        seq_to=data.seq_to,
        uri=str(export.archive.path),
        sha256=export.archive.sha256,
        description=f"{data.description} ({export.archive.rows} audit entries exported; chain {state})",
        added_by=actor,
    )
    await repository.add(session, row)
    await audit_log.append(
        session,
        actor=actor,
        action="audit.evidence_exported",
        target=str(audit.id),
        detail={
            "evidence_id": str(row.id),
            "service": row.service,
            "entries": export.archive.rows,
            "sha256": row.sha256,
            "first_bad_seq": export.first_bad_seq,
        },
    )
    return evidence_view(row)


async def add_finding(session: AsyncSession, audit_id: uuid.UUID, data: FindingCreate, *, actor: str) -> FindingView:
    audit = await open_audit(session, audit_id)
    row = AuditFinding(
        id=uuid.uuid4(),
        audit_id=audit.id,
        title=data.title,
        description=data.description,
        rating=data.rating.value,
        recommendation=data.recommendation,
        source="manual",
        detail={},
        status=FindingStatus.open.value,
        created_by=actor,
    )
    await repository.add(session, row)
    await audit_log.append(
        session,
        actor=actor,
        action="audit.finding_added",
        target=str(audit.id),
        detail={"finding_id": str(row.id), "rating": row.rating},
    )
    return _finding_view(row, [], {}, today=datetime.now(UTC).date())


async def add_remediation(
    session: AsyncSession, finding_id: uuid.UUID, data: RemediationCreate, *, actor: str, today: date
) -> RemediationView:
    finding = await repository.get_finding(session, finding_id, lock=True)
    if finding is None:
        raise FindingNotFound()
    await open_audit(session, finding.audit_id)
    if finding.status == FindingStatus.closed:
        raise InvalidState("the finding is closed")
    row = AuditRemediation(
        id=uuid.uuid4(),
        finding_id=finding.id,
        action=data.action,
        owner=data.owner,
        due_on=data.due_on,
        status=RemediationStatus.open.value,
        created_by=actor,
    )
    await repository.add(session, row)
    finding.status = FindingStatus.remediating.value
    await flush_pending(session)
    await audit_log.append(
        session,
        actor=actor,
        action="audit.remediation_added",
        target=str(finding.id),
        detail={"remediation_id": str(row.id), "due_on": data.due_on.isoformat()},
    )
    return _remediation_view(row, [], today)


async def follow_up(
    session: AsyncSession, remediation_id: uuid.UUID, data: FollowUpCreate, *, actor: str, today: date
) -> RemediationView:
    """Record a follow-up; ``done`` dates the completion, ``verified`` closes the action (by someone else)."""
    remediation = await repository.get_remediation(session, remediation_id, lock=True)
    if remediation is None:
        raise RemediationNotFound()
    finding = await repository.get_finding(session, remediation.finding_id, lock=True)
    assert finding is not None  # foreign key
    await open_audit(session, finding.audit_id)
    if remediation.status == RemediationStatus.verified:
        raise InvalidState("the remediation is verified already")
    if data.status == RemediationStatus.verified and actor == remediation.created_by == remediation.owner:
        raise InvalidState("who owns and recorded the action does not verify it")
    if data.status == RemediationStatus.verified and remediation.status != RemediationStatus.done:
        raise InvalidState("only a done action can be verified")
    note = AuditFollowUp(
        id=uuid.uuid4(), remediation_id=remediation.id, note=data.note, status=data.status.value, by=actor
    )
    await repository.add(session, note)
    if data.status == RemediationStatus.done and remediation.completed_on is None:
        remediation.completed_on = today
    remediation.status = data.status.value
    if data.status == RemediationStatus.verified:
        siblings = await repository.remediations(session, [finding.id])
        if all(r.status == RemediationStatus.verified for r in siblings):
            finding.status = FindingStatus.closed.value
    await flush_pending(session)
    await audit_log.append(
        session,
        actor=actor,
        action="audit.follow_up",
        target=str(remediation.id),
        detail={"status": data.status.value, "finding_status": finding.status},
    )
    follow_ups = await repository.follow_ups(session, [remediation.id])
    return _remediation_view(remediation, follow_ups, today)


def _remediation_view(row: AuditRemediation, follow_ups: list[AuditFollowUp], today: date) -> RemediationView:
    return RemediationView(
        id=row.id,
        finding_id=row.finding_id,
        action=row.action,
        owner=row.owner,
        due_on=row.due_on,
        status=RemediationStatus(row.status),
        completed_on=row.completed_on,
        overdue=row.status != RemediationStatus.verified and today > row.due_on,
        follow_ups=[
            FollowUpView(id=f.id, note=f.note, status=RemediationStatus(f.status), by=f.by, at=f.at) for f in follow_ups
        ],
    )


def _finding_view(
    row: AuditFinding,
    remediations: list[AuditRemediation],
    follow_ups: dict[uuid.UUID, list[AuditFollowUp]],
    *,
    today: date,
) -> FindingView:
    return FindingView(
        id=row.id,
        audit_id=row.audit_id,
        title=row.title,
        description=row.description,
        rating=Rating(row.rating),
        recommendation=row.recommendation,
        source=row.source,
        detail=dict(row.detail),
        status=FindingStatus(row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        remediations=[_remediation_view(r, follow_ups.get(r.id, []), today) for r in remediations],
    )


async def findings(session: AsyncSession, audit_id: uuid.UUID, today: date) -> list[FindingView]:
    await get_audit(session, audit_id)
    rows = await repository.findings(session, audit_id)
    remediations = await repository.remediations(session, [f.id for f in rows])
    follow_ups: dict[uuid.UUID, list[AuditFollowUp]] = {}
    for item in await repository.follow_ups(session, [r.id for r in remediations]):
        follow_ups.setdefault(item.remediation_id, []).append(item)
    return [_finding_view(f, [r for r in remediations if r.finding_id == f.id], follow_ups, today=today) for f in rows]


async def report(session: AsyncSession, audit_id: uuid.UUID, today: date) -> AuditReport:
    audit = await get_audit(session, audit_id)
    evidence = [evidence_view(row) for row in await repository.evidence(session, audit_id)]
    found = await findings(session, audit_id, today)
    ratings = Counter(f.rating.value for f in found)
    run = await repository.latest_verification(session)
    chains = []
    if run is not None:
        chains = [
            LatestChainCheck(
                service=str(item.get("service")),
                status=str(item.get("status")),
                verified_at=run.run_at,
                first_bad_seq=(item.get("first_bad") or {}).get("seq"),
            )
            for item in run.results
        ]
    return AuditReport(
        audit=audit_view(audit),
        generated_at=datetime.now(UTC),
        as_of=today,
        evidence=evidence,
        findings=found,
        findings_by_rating={rating.value: ratings.get(rating.value, 0) for rating in Rating},
        overdue_remediations=sum(1 for f in found for r in f.remediations if r.overdue),
        chains=chains,
    )
