"""Queries of audits, evidence, findings, remediation and follow-ups."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import (
    AuditEvidence,
    AuditFinding,
    AuditFollowUp,
    AuditPlan,
    AuditRemediation,
    AuditVerificationRun,
)

Row = AuditPlan | AuditEvidence | AuditFinding | AuditRemediation | AuditFollowUp


async def add(session: AsyncSession, row: Row) -> None:
    session.add(row)
    await session.flush()
    await session.refresh(row)


async def get_audit(session: AsyncSession, audit_id: uuid.UUID, *, lock: bool = False) -> AuditPlan | None:
    query = select(AuditPlan).where(AuditPlan.id == audit_id)
    return (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()


async def list_audits(session: AsyncSession, status: str | None) -> list[AuditPlan]:
    query = select(AuditPlan).order_by(AuditPlan.created_at.desc())
    if status is not None:
        query = query.where(AuditPlan.status == status)
    return list((await session.execute(query)).scalars())


async def get_finding(session: AsyncSession, finding_id: uuid.UUID, *, lock: bool = False) -> AuditFinding | None:
    query = select(AuditFinding).where(AuditFinding.id == finding_id)
    return (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()


async def get_remediation(
    session: AsyncSession, remediation_id: uuid.UUID, *, lock: bool = False
) -> AuditRemediation | None:
    query = select(AuditRemediation).where(AuditRemediation.id == remediation_id)
    return (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()


async def evidence(session: AsyncSession, audit_id: uuid.UUID) -> list[AuditEvidence]:
    query = select(AuditEvidence).where(AuditEvidence.audit_id == audit_id).order_by(AuditEvidence.added_at)
    return list((await session.execute(query)).scalars())


async def findings(session: AsyncSession, audit_id: uuid.UUID) -> list[AuditFinding]:
    query = select(AuditFinding).where(AuditFinding.audit_id == audit_id).order_by(AuditFinding.created_at)
    return list((await session.execute(query)).scalars())


async def remediations(session: AsyncSession, finding_ids: Sequence[uuid.UUID]) -> list[AuditRemediation]:
    if not finding_ids:
        return []
    query = (
        select(AuditRemediation)
        .where(AuditRemediation.finding_id.in_(finding_ids))
        .order_by(AuditRemediation.due_on, AuditRemediation.created_at)
    )
    return list((await session.execute(query)).scalars())


async def follow_ups(session: AsyncSession, remediation_ids: Sequence[uuid.UUID]) -> list[AuditFollowUp]:
    if not remediation_ids:
        return []
    query = select(AuditFollowUp).where(AuditFollowUp.remediation_id.in_(remediation_ids)).order_by(AuditFollowUp.at)
    return list((await session.execute(query)).scalars())


async def latest_verification(session: AsyncSession) -> AuditVerificationRun | None:
    query = select(AuditVerificationRun).order_by(AuditVerificationRun.run_at.desc()).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def add_finding_once(session: AsyncSession, values: dict[str, object]) -> uuid.UUID | None:
    """Insert a finding unless one with the same (audit, dedupe key) exists; its id when inserted."""
    statement = (
        insert(AuditFinding)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[AuditFinding.audit_id, AuditFinding.dedupe_key])
        .returning(AuditFinding.id)
    )
    inserted: uuid.UUID | None = (await session.execute(statement)).scalar_one_or_none()
    return inserted
