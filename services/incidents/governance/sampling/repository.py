"""Queries of sampling runs."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import SamplingRun


async def add(session: AsyncSession, run: SamplingRun) -> None:
    session.add(run)
    await session.flush()
    await session.refresh(run, ["run_at"])


async def runs_of(session: AsyncSession, audit_id: uuid.UUID) -> list[SamplingRun]:
    query = select(SamplingRun).where(SamplingRun.audit_id == audit_id).order_by(SamplingRun.run_at.desc())
    return list((await session.execute(query)).scalars())
