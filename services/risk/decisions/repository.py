"""Queries of the decisions listing (keyset pagination on occurred_at, transaction_id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import ScoredTransaction


async def page(
    session: AsyncSession,
    *,
    kind: str | None,
    min_amount_minor: int | None,
    occurred_from: datetime | None,
    occurred_to: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ScoredTransaction]:
    t = ScoredTransaction
    query = select(t).where(t.decision.is_not(None)).order_by(t.occurred_at, t.transaction_id).limit(limit)
    if kind is not None:
        query = query.where(t.kind == kind)
    if min_amount_minor is not None:
        query = query.where(t.amount_minor >= min_amount_minor)
    if occurred_from is not None:
        query = query.where(t.occurred_at >= occurred_from)
    if occurred_to is not None:
        query = query.where(t.occurred_at < occurred_to)
    if after is not None:
        query = query.where(or_(t.occurred_at > after[0], and_(t.occurred_at == after[0], t.transaction_id > after[1])))
    return list((await session.execute(query)).scalars())
