"""Queries of subject states, suspensions and training records."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.permissions.models import SubjectState, Suspension, TrainingRecord


async def state_for_update(session: AsyncSession, subject: str) -> SubjectState | None:
    return await session.get(SubjectState, subject, with_for_update=True)


async def active_suspension(session: AsyncSession, subject: str) -> Suspension | None:
    query = select(Suspension).where(Suspension.subject == subject, Suspension.lifted_at.is_(None))
    return (await session.execute(query)).scalar_one_or_none()


async def suspension_for_update(session: AsyncSession, suspension_id: uuid.UUID) -> Suspension | None:
    return await session.get(Suspension, suspension_id, with_for_update=True)


async def trainings_of(session: AsyncSession, subject: str) -> list[TrainingRecord]:
    query = select(TrainingRecord).where(TrainingRecord.subject == subject).order_by(TrainingRecord.completed_at)
    return list((await session.execute(query)).scalars())
