"""Stored history: batched inserts of imported rows, and the events training reads (in event order)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.learning.features import HistoryEvent
from services.risk.models import ScoredTransaction

#: The columns an imported row carries (the others take their defaults).
IMPORT_COLUMNS = (
    "transaction_id", "customer_key", "account_id", "customer_id", "payee", "amount_minor", "currency",
    "occurred_at", "kind", "channel", "ip", "device_id", "region", "source", "label", "labelled_at", "label_source",
)  # fmt: skip

STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS risk_history_stage "
    "(LIKE risk.scored_transaction INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
MOVE = (
    f"INSERT INTO risk.scored_transaction ({', '.join(IMPORT_COLUMNS)}) "  # noqa: S608 (fixed column names)
    f"SELECT {', '.join(IMPORT_COLUMNS)} FROM risk_history_stage "
    "ON CONFLICT (transaction_id) DO NOTHING"
)


async def insert_batch(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert rows not stored yet (a re-run of an import adds nothing); returns how many were new.

    The rows are streamed with COPY into a temporary table of the session's transaction, then moved
    with one INSERT ... SELECT ... ON CONFLICT DO NOTHING (an order of magnitude faster than a
    multi-row INSERT, whose statement SQLAlchemy would compile for every batch).
    """
    if not rows:
        return 0
    await session.execute(text(STAGE))  # through SQLAlchemy: this begins the session's transaction
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(
        "risk_history_stage",
        records=[tuple(row.get(c) for c in IMPORT_COLUMNS) for row in rows],
        columns=list(IMPORT_COLUMNS),
    )
    status: str = await driver.execute(MOVE)
    await driver.execute("DELETE FROM risk_history_stage")
    return int(status.rsplit(" ", 1)[-1])


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
