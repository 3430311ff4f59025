"""Queries of access-review campaigns and their items."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.permissions.models import Grant, ReviewCampaign, ReviewDecision, ReviewItem, TrainingRecord


async def campaign(session: AsyncSession, campaign_id: uuid.UUID, *, for_update: bool = False) -> ReviewCampaign | None:
    return await session.get(ReviewCampaign, campaign_id, with_for_update=for_update)


async def item_for_update(session: AsyncSession, item_id: uuid.UUID) -> ReviewItem | None:
    return await session.get(ReviewItem, item_id, with_for_update=True)


async def grant_for_update(session: AsyncSession, grant_id: uuid.UUID) -> Grant | None:
    return await session.get(Grant, grant_id, with_for_update=True)


async def decision_counts(session: AsyncSession, campaign_id: uuid.UUID) -> list[tuple[str, int]]:
    query = (
        select(ReviewItem.decision, func.count())
        .where(ReviewItem.campaign_id == campaign_id)
        .group_by(ReviewItem.decision)
    )
    return [(decision, int(n)) for decision, n in (await session.execute(query)).tuples()]


async def items_of(session: AsyncSession, campaign_id: uuid.UUID, reviewer: str | None) -> list[ReviewItem]:
    query = select(ReviewItem).where(ReviewItem.campaign_id == campaign_id).order_by(ReviewItem.subject)
    if reviewer is not None:
        query = query.where(ReviewItem.reviewer == reviewer)
    return list((await session.execute(query)).scalars())


async def pending_past_due(session: AsyncSession, now: datetime) -> list[tuple[Any, ...]]:
    """(campaign id, name, due_at, reviewer, pending items) of open campaigns past their due date."""
    query = (
        select(ReviewCampaign.id, ReviewCampaign.name, ReviewCampaign.due_at, ReviewItem.reviewer, func.count())
        .join(ReviewItem, ReviewItem.campaign_id == ReviewCampaign.id)
        .where(
            ReviewCampaign.closed_at.is_(None),
            ReviewCampaign.due_at < now,
            ReviewItem.decision == ReviewDecision.pending,
        )
        .group_by(ReviewCampaign.id, ReviewCampaign.name, ReviewCampaign.due_at, ReviewItem.reviewer)
        .order_by(ReviewCampaign.due_at)
    )
    return [tuple(row) for row in (await session.execute(query)).tuples()]


async def subjects_trained(session: AsyncSession, course: str, now: datetime) -> set[str]:
    query = select(TrainingRecord.subject).where(TrainingRecord.course == course, TrainingRecord.expires_at > now)
    return set((await session.execute(query)).scalars())
