"""Grants made in a period, with the training record in force at the time (for sampling audits)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.permissions.audit_samples.schemas import GrantSample, SampledGrant, TrainingAtGrant
from services.permissions.models import Grant, Role, TrainingRecord


async def grant_sample(
    session: AsyncSession,
    *,
    created_from: datetime,
    created_to: datetime,
    high_risk_only: bool,
    after: uuid.UUID | None,
    limit: int,
) -> GrantSample:
    query = (
        select(Grant, Role)
        .join(Role, Role.id == Grant.role_id)
        .where(Grant.created_at >= created_from, Grant.created_at < created_to)
        .order_by(Grant.id)
        .limit(limit)
    )
    if high_risk_only:
        query = query.where(Role.high_risk.is_(True))
    if after is not None:
        query = query.where(Grant.id > after)
    rows = (await session.execute(query)).all()
    grants = []
    for grant, role in rows:
        training = (
            await session.execute(
                select(TrainingRecord)
                .where(
                    TrainingRecord.subject == grant.subject,
                    TrainingRecord.completed_at <= grant.created_at,
                    TrainingRecord.expires_at > grant.created_at,
                )
                .order_by(TrainingRecord.completed_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        grants.append(
            SampledGrant(
                id=grant.id,
                subject=grant.subject,
                role=role.name,
                high_risk=role.high_risk,
                requested_by=grant.requested_by,
                approved_by=grant.approved_by,
                approval_id=grant.approval_id,
                created_at=grant.created_at,
                training=TrainingAtGrant(
                    course=training.course, completed_at=training.completed_at, expires_at=training.expires_at
                )
                if training is not None
                else None,
            )
        )
    cursor = str(grants[-1].id) if len(grants) == limit else None
    return GrantSample(grants=grants, cursor=cursor)
