"""Aggregate queries behind the KPIs (computed in PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import SQLColumnExpression

from services.incidents.models import Incident, IncidentReport, SlaClock


async def counts_by(
    session: AsyncSession, column: SQLColumnExpression[Any], start: datetime, end: datetime
) -> dict[str, int]:
    rows = await session.execute(
        select(column, func.count()).where(Incident.created_at >= start, Incident.created_at < end).group_by(column)
    )
    return {str(key): int(count) for key, count in rows.all()}


async def percentiles(
    session: AsyncSession, until: SQLColumnExpression[Any], start: datetime, end: datetime
) -> tuple[int, float | None, float | None]:
    """(n, p50, p90) in seconds of `until - created_at` over incidents opened in the period that reached it."""
    seconds = func.extract("epoch", until - Incident.created_at)
    row = (
        await session.execute(
            select(
                func.count(until),
                func.percentile_cont(0.5).within_group(seconds),
                func.percentile_cont(0.9).within_group(seconds),
            ).where(Incident.created_at >= start, Incident.created_at < end, until.is_not(None))
        )
    ).one()
    return int(row[0]), (float(row[1]) if row[1] is not None else None), (float(row[2]) if row[2] is not None else None)


async def breaches_by_kind(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    rows = await session.execute(
        select(SlaClock.kind, func.count())
        .where(SlaClock.breached_at >= start, SlaClock.breached_at < end)
        .group_by(SlaClock.kind)
    )
    return {str(kind): int(count) for kind, count in rows.all()}


async def reports_by_source(session: AsyncSession, start: datetime, end: datetime) -> dict[str, int]:
    rows = await session.execute(
        select(IncidentReport.source, func.count())
        .where(IncidentReport.received_at >= start, IncidentReport.received_at < end)
        .group_by(IncidentReport.source)
    )
    return {str(source): int(count) for source, count in rows.all()}
