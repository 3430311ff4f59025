"""Queries of scoring: the idempotency record and the login log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import LoginEvent, ScoredTransaction, ShadowDecision


async def stored(session: AsyncSession, transaction_id: str) -> ScoredTransaction | None:
    return await session.get(ScoredTransaction, transaction_id)


async def insert_scored(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store the decision; False when the transaction was already scored (a concurrent repeat won).

    An imported row of the same id (history without a decision) takes the decision.
    """
    statement = pg_insert(ScoredTransaction).values(**values)
    inserted = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ScoredTransaction.transaction_id],
            set_={k: statement.excluded[k] for k in values if k not in {"transaction_id", "label", "labelled_at"}},
            where=ScoredTransaction.decision.is_(None),
        ).returning(ScoredTransaction.transaction_id)
    )
    return inserted.first() is not None


async def first_decision(session: AsyncSession, transaction_id: str) -> ScoredTransaction | None:
    found: ScoredTransaction | None = (
        await session.execute(
            select(ScoredTransaction)
            .where(ScoredTransaction.transaction_id == transaction_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    return found


async def record_login(session: AsyncSession, event: LoginEvent) -> None:
    session.add(event)
    await session.flush()


async def record_shadow(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(pg_insert(ShadowDecision).values(**values).on_conflict_do_nothing())
