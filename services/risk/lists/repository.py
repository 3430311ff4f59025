"""Queries of the shared lists."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import ListEntry


async def insert_active(session: AsyncSession, values: dict[str, object]) -> ListEntry | None:
    """Insert unless the same list/value/verdict is already active (None then)."""
    inserted = await session.execute(
        pg_insert(ListEntry)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(
            index_elements=[ListEntry.list, ListEntry.value, ListEntry.verdict],
            index_where=ListEntry.removed_at.is_(None),
        )
        .returning(ListEntry)
    )
    return inserted.scalar_one_or_none()


async def active_entry(session: AsyncSession, list_name: str, value: str, verdict: str) -> ListEntry | None:
    found: ListEntry | None = await session.scalar(
        select(ListEntry).where(
            ListEntry.list == list_name,
            ListEntry.value == value,
            ListEntry.verdict == verdict,
            ListEntry.removed_at.is_(None),
        )
    )
    return found


async def entries(session: AsyncSession, list_name: str, *, include_removed: bool) -> list[ListEntry]:
    query = select(ListEntry).where(ListEntry.list == list_name).order_by(ListEntry.added_at, ListEntry.value)
    if not include_removed:
        query = query.where(ListEntry.removed_at.is_(None))
    return list((await session.execute(query)).scalars())


async def remove(session: AsyncSession, entry_id: uuid.UUID, list_name: str, actor: str) -> ListEntry | None:
    entry = await session.get(ListEntry, entry_id, with_for_update=True)
    if entry is None or entry.list != list_name or entry.removed_at is not None:
        return None
    entry.removed_at, entry.removed_by = datetime.now(UTC), actor
    await session.flush()
    return entry
