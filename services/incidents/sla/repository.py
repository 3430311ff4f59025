"""Queries of SLA clocks and escalations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import Escalation, SlaClock


async def clocks_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[SlaClock]:
    return (
        await session.scalars(select(SlaClock).where(SlaClock.incident_id == incident_id).order_by(SlaClock.due_at))
    ).all()


async def clock(session: AsyncSession, incident_id: uuid.UUID, kind: str) -> SlaClock | None:
    result: SlaClock | None = await session.scalar(
        select(SlaClock).where(SlaClock.incident_id == incident_id, SlaClock.kind == kind).with_for_update()
    )
    return result


async def running_clocks(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[SlaClock]:
    return (
        await session.scalars(
            select(SlaClock).where(SlaClock.incident_id == incident_id, SlaClock.met_at.is_(None)).with_for_update()
        )
    ).all()


async def due_for_escalation(session: AsyncSession, now: datetime, limit: int = 200) -> Sequence[SlaClock]:
    """Running, unpaused clocks past their warning or their deadline and not yet escalated for it.

    SKIP LOCKED: replicas running the worker split the rows, none escalates twice.
    """
    return (
        await session.scalars(
            select(SlaClock)
            .where(
                SlaClock.met_at.is_(None),
                SlaClock.paused_at.is_(None),
                or_(
                    (SlaClock.warned_at.is_(None) & (SlaClock.warn_at <= now)),
                    (SlaClock.breached_at.is_(None) & (SlaClock.due_at <= now)),
                ),
            )
            .order_by(SlaClock.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def breaches(session: AsyncSession, start: datetime, end: datetime) -> Sequence[SlaClock]:
    return (
        await session.scalars(
            select(SlaClock)
            .where(SlaClock.breached_at >= start, SlaClock.breached_at < end)
            .order_by(SlaClock.breached_at)
        )
    ).all()


async def escalations(
    session: AsyncSession, *, recipient: str | None, tier: str | None, open_only: bool, limit: int
) -> Sequence[Escalation]:
    query = select(Escalation).order_by(Escalation.created_at.desc()).limit(limit)
    if recipient is not None:
        query = query.where(Escalation.recipient == recipient)
    if tier is not None:
        query = query.where(Escalation.recipient_role == tier)
    if open_only:
        query = query.where(Escalation.acknowledged_at.is_(None))
    return (await session.scalars(query)).all()


async def escalation(session: AsyncSession, escalation_id: uuid.UUID) -> Escalation | None:
    result: Escalation | None = await session.scalar(
        select(Escalation).where(Escalation.id == escalation_id).with_for_update()
    )
    return result
