"""Queries of the alert queue."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import Alert, AlertComment


async def queue(
    session: AsyncSession, *, status: str | None, category: str | None, grade: int | None, limit: int
) -> list[Alert]:
    """Most severe first: grade, then score (analysts rank by it)."""
    query = select(Alert).order_by(Alert.grade, Alert.score.desc(), Alert.created_at).limit(limit)
    if status is not None:
        query = query.where(Alert.status == status)
    if category is not None:
        query = query.where(Alert.category == category)
    if grade is not None:
        query = query.where(Alert.grade <= grade)
    return list((await session.execute(query)).scalars())


async def locked(session: AsyncSession, alert_id: uuid.UUID) -> Alert | None:
    return await session.get(Alert, alert_id, with_for_update=True)


async def comments(session: AsyncSession, alert_id: uuid.UUID) -> list[AlertComment]:
    query = select(AlertComment).where(AlertComment.alert_id == alert_id).order_by(AlertComment.created_at)
    return list((await session.execute(query)).scalars())


async def add_comment(session: AsyncSession, alert_id: uuid.UUID, author: str, body: str) -> None:
    session.add(AlertComment(alert_id=alert_id, author=author, body=body))
    await session.flush()


SummaryRow = tuple[str | None, str, str | None, int]


async def summary(session: AsyncSession, start: datetime, end: datetime) -> list[SummaryRow]:
    """(analyst, status, resolution, count) of the alerts created in [start, end)."""
    # who worked an alert: its assignee, else whoever resolved it (null: nobody yet)
    analyst = func.coalesce(Alert.assignee, Alert.resolved_by).label("analyst")
    query = (
        select(analyst, Alert.status, Alert.resolution, func.count())
        .where(Alert.created_at >= start, Alert.created_at < end)
        .group_by(analyst, Alert.status, Alert.resolution)
    )
    return [(a, str(status), resolution, int(n)) for a, status, resolution, n in (await session.execute(query)).all()]
