"""Queries of response teams, the on-call rota and reports up the chain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import Assignment, ChainReport, OnCallShift


async def shift_at(session: AsyncSession, tier: str, at: datetime) -> OnCallShift | None:
    """The shift of a tier covering `at` (the latest started, when shifts overlap after a hand-over)."""
    result: OnCallShift | None = await session.scalar(
        select(OnCallShift)
        .where(OnCallShift.tier == tier, OnCallShift.starts_at <= at, OnCallShift.ends_at > at)
        .order_by(OnCallShift.starts_at.desc())
        .limit(1)
    )
    return result


async def shifts(session: AsyncSession, start: datetime, end: datetime) -> Sequence[OnCallShift]:
    return (
        await session.scalars(
            select(OnCallShift)
            .where(OnCallShift.ends_at > start, OnCallShift.starts_at < end)
            .order_by(OnCallShift.starts_at, OnCallShift.tier)
        )
    ).all()


async def active_assignment(session: AsyncSession, incident_id: uuid.UUID, role: str) -> Assignment | None:
    result: Assignment | None = await session.scalar(
        select(Assignment)
        .where(Assignment.incident_id == incident_id, Assignment.role == role, Assignment.released_at.is_(None))
        .with_for_update()
    )
    return result


async def assignments(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[Assignment]:
    return (
        await session.scalars(
            select(Assignment).where(Assignment.incident_id == incident_id).order_by(Assignment.assigned_at)
        )
    ).all()


async def chain_reports(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[ChainReport]:
    return (
        await session.scalars(
            select(ChainReport).where(ChainReport.incident_id == incident_id).order_by(ChainReport.due_at)
        )
    ).all()


async def chain_report(session: AsyncSession, incident_id: uuid.UUID, audience: str) -> ChainReport | None:
    result: ChainReport | None = await session.scalar(
        select(ChainReport)
        .where(ChainReport.incident_id == incident_id, ChainReport.audience == audience)
        .with_for_update()
    )
    return result


async def overdue_chain_reports(session: AsyncSession, now: datetime) -> Sequence[ChainReport]:
    return (
        await session.scalars(
            select(ChainReport)
            .where(ChainReport.reported_at.is_(None), ChainReport.overdue_at.is_(None), ChainReport.due_at <= now)
            .with_for_update(skip_locked=True)
        )
    ).all()
