"""Queries of the verification runs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import AuditVerificationRun


async def add_run(session: AsyncSession, run: AuditVerificationRun) -> AuditVerificationRun:
    session.add(run)
    await session.flush()
    await session.refresh(run, ["run_at"])
    return run


async def recent_runs(session: AsyncSession, limit: int) -> list[AuditVerificationRun]:
    query = select(AuditVerificationRun).order_by(AuditVerificationRun.run_at.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
