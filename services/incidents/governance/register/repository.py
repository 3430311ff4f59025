"""Queries of the risk register."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import RegisterReview, RegisterRisk


async def add(session: AsyncSession, row: RegisterRisk | RegisterReview) -> None:
    session.add(row)
    await session.flush()


async def get(session: AsyncSession, risk_id: uuid.UUID, *, lock: bool = False) -> RegisterRisk | None:
    query = select(RegisterRisk).where(RegisterRisk.id == risk_id)
    return (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()


async def search(
    session: AsyncSession,
    *,
    category: str | None = None,
    status: str | None = None,
    due_before: date | None = None,
) -> list[RegisterRisk]:
    query = select(RegisterRisk)
    if category is not None:
        query = query.where(RegisterRisk.category == category)
    if status is not None:
        query = query.where(RegisterRisk.status == status)
    if due_before is not None:
        query = query.where(RegisterRisk.next_review_on < due_before)
    query = query.order_by((RegisterRisk.likelihood * RegisterRisk.impact).desc(), RegisterRisk.created_at)
    return list((await session.execute(query)).scalars())


async def reviews(session: AsyncSession, risk_id: uuid.UUID) -> list[RegisterReview]:
    query = (
        select(RegisterReview)
        .where(RegisterReview.risk_id == risk_id)
        .order_by(RegisterReview.reviewed_on.desc(), RegisterReview.created_at.desc())
    )
    return list((await session.execute(query)).scalars())
