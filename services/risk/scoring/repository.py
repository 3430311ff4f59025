"""Queries of scoring: the idempotency record and the login log.

The hot statements are plain SQL (compiled once by SQLAlchemy, prepared once per connection
by asyncpg): the ORM's per-call compilation of an upsert cost more than the rest of a score.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.statements import Statement
from services.risk.models import LoginEvent, ShadowDecision

COLUMNS = (
    "transaction_id", "customer_key", "account_id", "customer_id", "payee", "amount_minor", "currency",
    "occurred_at", "kind", "channel", "ip", "device_id", "region", "session_id", "source", "score", "decision",
    "reasons", "model_version", "ruleset_version", "features", "approval_id",
)  # fmt: skip
UPDATED = [c for c in COLUMNS if c != "transaction_id"]

STORED = Statement(
    text(
        "SELECT transaction_id, score, decision, reasons, model_version, ruleset_version "
        "FROM risk.scored_transaction WHERE transaction_id = :id"
    )
)

INSERT = Statement(
    text(
        f"INSERT INTO risk.scored_transaction AS s ({', '.join(COLUMNS)}) "  # noqa: S608 (fixed column names)
        f"VALUES ({', '.join(':' + c for c in COLUMNS)}) "
        "ON CONFLICT (transaction_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in UPDATED)
        + " WHERE s.decision IS NULL RETURNING transaction_id"
    ).bindparams(bindparam("reasons", type_=JSONB), bindparam("features", type_=JSONB))
)


async def stored(session: AsyncSession, transaction_id: str) -> dict[str, Any] | None:
    """The first decision of a transaction, if it was scored (imported history has none)."""
    row = await STORED.fetchrow(session, {"id": transaction_id})
    return dict(row) if row is not None and row["decision"] is not None else None


async def insert_scored(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store the decision; False when the transaction was already scored (a concurrent repeat won).

    An imported row of the same id (history without a decision) takes the decision.
    """
    return await INSERT.fetchrow(session, values) is not None


async def first_decision(session: AsyncSession, transaction_id: str) -> dict[str, Any] | None:
    row = await STORED.fetchrow(session, {"id": transaction_id})
    return None if row is None else dict(row)


async def record_login(session: AsyncSession, event: LoginEvent) -> None:
    session.add(event)
    await session.flush()


async def record_shadow(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(pg_insert(ShadowDecision).values(**values).on_conflict_do_nothing())
