"""Stored history: batched inserts of imported rows, and the events training reads (in event order)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.learning.features import HistoryEvent
from services.risk.models import ScoredTransaction


async def insert_batch(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert rows not stored yet (a re-run of an import adds nothing); returns how many were new."""
    if not rows:
        return 0
    result = await session.execute(
        pg_insert(ScoredTransaction)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[ScoredTransaction.transaction_id])
        .returning(ScoredTransaction.transaction_id)
    )
    return len(result.all())


async def history_events(
    session: AsyncSession,
    *,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    batch_size: int = 5_000,
) -> AsyncIterator[HistoryEvent]:
    """Every stored transaction (scored or imported) with its label, in ``occurred_at`` order.

    This is what learning trains from: ``customer_id`` is risk's customer key (identity's customer id,
    or ``acct:<core account>`` when none was known), ``labelled_at`` when the label became known.
    """
    t = ScoredTransaction
    query = select(
        t.transaction_id,
        t.customer_key,
        t.payee,
        t.amount_minor,
        t.occurred_at,
        t.kind,
        t.channel,
        t.device_id,
        t.region,
        t.label,
        t.labelled_at,
    ).order_by(t.occurred_at, t.transaction_id)
    if occurred_from is not None:
        query = query.where(t.occurred_at >= occurred_from)
    if occurred_to is not None:
        query = query.where(t.occurred_at < occurred_to)
    result = await session.stream(query.execution_options(yield_per=batch_size))
    async for row in result:
        yield HistoryEvent(
            transaction_id=row.transaction_id,
            customer_id=row.customer_key,
            payee=row.payee,
            amount_minor=row.amount_minor,
            occurred_at=row.occurred_at,
            kind=row.kind,
            channel=row.channel,
            device_id=row.device_id,
            region=row.region,
            label=row.label,
            labelled_at=row.labelled_at,
        )
