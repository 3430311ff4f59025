"""Queries of post-mortems, corrective actions and accountability records."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import Accountability, CorrectiveAction, PostMortem


async def postmortem(session: AsyncSession, incident_id: uuid.UUID, *, for_update: bool = False) -> PostMortem | None:
    query = select(PostMortem).where(PostMortem.incident_id == incident_id)
    if for_update:
        query = query.with_for_update()
    result: PostMortem | None = await session.scalar(query)
    return result


async def actions_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[CorrectiveAction]:
    return (
        await session.scalars(
            select(CorrectiveAction)
            .where(CorrectiveAction.incident_id == incident_id)
            .order_by(CorrectiveAction.due_at)
        )
    ).all()


async def action(session: AsyncSession, action_id: uuid.UUID) -> CorrectiveAction | None:
    result: CorrectiveAction | None = await session.scalar(
        select(CorrectiveAction).where(CorrectiveAction.id == action_id).with_for_update()
    )
    return result


async def open_actions(
    session: AsyncSession, *, owner: str | None, overdue_at: datetime | None, limit: int
) -> Sequence[CorrectiveAction]:
    query = (
        select(CorrectiveAction)
        .where(CorrectiveAction.closed_at.is_(None))
        .order_by(CorrectiveAction.due_at)
        .limit(limit)
    )
    if owner is not None:
        query = query.where(CorrectiveAction.owner == owner)
    if overdue_at is not None:
        query = query.where(CorrectiveAction.due_at < overdue_at)
    return (await session.scalars(query)).all()


async def overdue_unescalated(session: AsyncSession, now: datetime) -> Sequence[CorrectiveAction]:
    return (
        await session.scalars(
            select(CorrectiveAction)
            .where(
                CorrectiveAction.closed_at.is_(None),
                CorrectiveAction.escalated_at.is_(None),
                CorrectiveAction.due_at < now,
            )
            .with_for_update(skip_locked=True)
        )
    ).all()


async def accountability_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[Accountability]:
    return (
        await session.scalars(
            select(Accountability).where(Accountability.incident_id == incident_id).order_by(Accountability.decided_at)
        )
    ).all()
