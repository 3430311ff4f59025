"""Queries of the retention purge: what is past its period, and the deletes (children first)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.retention import row_dict
from services.incidents.models import (
    AuditEvidence,
    AuditFinding,
    AuditFollowUp,
    AuditPlan,
    AuditRemediation,
    AuditVerificationRun,
    RegisterReview,
    RetentionRun,
    SamplingRun,
    Vulnerability,
)


async def old_verification_runs(session: AsyncSession, cutoff: datetime) -> list[AuditVerificationRun]:
    query = select(AuditVerificationRun).where(AuditVerificationRun.run_at < cutoff).with_for_update()
    return list((await session.execute(query)).scalars())


async def old_reviews(session: AsyncSession, cutoff: date) -> list[RegisterReview]:
    query = select(RegisterReview).where(RegisterReview.reviewed_on < cutoff).with_for_update()
    return list((await session.execute(query)).scalars())


async def old_vulnerabilities(session: AsyncSession, cutoff: date) -> list[Vulnerability]:
    query = (
        select(Vulnerability)
        .where(Vulnerability.status.in_(("fixed", "accepted")), Vulnerability.found_on < cutoff)
        .where((Vulnerability.fixed_on.is_(None)) | (Vulnerability.fixed_on < cutoff))
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


async def old_audits(session: AsyncSession, cutoff: date) -> list[dict[str, Any]]:
    """Closed audits whose period ended before the cutoff, each with everything that hangs on it."""
    plans = list(
        (
            await session.execute(
                select(AuditPlan).where(AuditPlan.status == "closed", AuditPlan.period_to < cutoff).with_for_update()
            )
        ).scalars()
    )
    files = []
    for plan in plans:
        findings = list((await session.execute(select(AuditFinding).where(AuditFinding.audit_id == plan.id))).scalars())
        remediations = list(
            (
                await session.execute(
                    select(AuditRemediation).where(AuditRemediation.finding_id.in_([f.id for f in findings]))
                )
            ).scalars()
        )
        follow_ups = list(
            (
                await session.execute(
                    select(AuditFollowUp).where(AuditFollowUp.remediation_id.in_([r.id for r in remediations]))
                )
            ).scalars()
        )
        evidence = list(
            (await session.execute(select(AuditEvidence).where(AuditEvidence.audit_id == plan.id))).scalars()
        )
        runs = list((await session.execute(select(SamplingRun).where(SamplingRun.audit_id == plan.id))).scalars())
        files.append(
            {
                "audit": row_dict(plan),
                "evidence": [row_dict(e) for e in evidence],
                "findings": [row_dict(f) for f in findings],
                "remediations": [row_dict(r) for r in remediations],
                "follow_ups": [row_dict(f) for f in follow_ups],
                "sampling_runs": [row_dict(r) for r in runs],
            }
        )
    return files


async def delete_audits(session: AsyncSession, audit_ids: Sequence[uuid.UUID]) -> None:
    findings = select(AuditFinding.id).where(AuditFinding.audit_id.in_(audit_ids))
    remediations = select(AuditRemediation.id).where(AuditRemediation.finding_id.in_(findings))
    await session.execute(delete(AuditFollowUp).where(AuditFollowUp.remediation_id.in_(remediations)))
    await session.execute(delete(AuditRemediation).where(AuditRemediation.finding_id.in_(findings)))
    await session.execute(delete(AuditFinding).where(AuditFinding.audit_id.in_(audit_ids)))
    await session.execute(delete(AuditEvidence).where(AuditEvidence.audit_id.in_(audit_ids)))
    await session.execute(delete(SamplingRun).where(SamplingRun.audit_id.in_(audit_ids)))
    await session.execute(delete(AuditPlan).where(AuditPlan.id.in_(audit_ids)))


async def delete_rows(session: AsyncSession, model: Any, ids: Sequence[uuid.UUID]) -> None:
    await session.execute(delete(model).where(model.id.in_(ids)))


async def add_run(session: AsyncSession, run: RetentionRun) -> None:
    session.add(run)
    await session.flush()
    await session.refresh(run, ["run_at"])


async def recent_runs(session: AsyncSession, limit: int) -> list[RetentionRun]:
    query = select(RetentionRun).order_by(RetentionRun.run_at.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
