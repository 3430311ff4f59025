"""Queries of staff behaviour."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import StaffEvent, outbox


async def lock_staff(session: AsyncSession, staff_id: str) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"risk.staff:{staff_id}"})


async def total(session: AsyncSession, staff_id: str, kind: str, since: datetime, until: datetime) -> int:
    query = select(func.coalesce(func.sum(StaffEvent.count), 0)).where(
        StaffEvent.staff_id == staff_id,
        StaffEvent.kind == kind,
        StaffEvent.occurred_at > since,
        StaffEvent.occurred_at <= until,
    )
    return int(await session.scalar(query) or 0)


async def events(session: AsyncSession, staff_id: str, kind: str, since: datetime, until: datetime) -> list[StaffEvent]:
    query = select(StaffEvent).where(
        StaffEvent.staff_id == staff_id,
        StaffEvent.kind == kind,
        StaffEvent.occurred_at > since,
        StaffEvent.occurred_at <= until,
    )
    return list((await session.execute(query)).scalars())


async def already_sent(session: AsyncSession, key: str) -> bool:
    table = outbox.messages
    return (await session.scalar(select(table.c.id).where(table.c.idempotency_key == key))) is not None
