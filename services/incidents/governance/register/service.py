"""The risk register (R-III.1-2): risks rated by the seed's matrix, their plans, reviews and the heat map.

Every change and every review is appended to the audit chain. A risk's next
review is due one interval after its last review (or its creation); an open
risk past that date is flagged ``review_overdue``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import flush_pending
from services.incidents.governance.errors import RiskNotFound
from services.incidents.governance.register import repository
from services.incidents.governance.register.matrix import level_of
from services.incidents.governance.register.schemas import (
    Category,
    HeatCell,
    HeatMap,
    Plan,
    ReviewCreate,
    ReviewView,
    RiskCreate,
    RiskStatus,
    RiskUpdate,
    RiskView,
)
from services.incidents.models import RegisterReview, RegisterRisk, audit_log


def view(risk: RegisterRisk, today: date) -> RiskView:
    return RiskView(
        id=risk.id,
        title=risk.title,
        description=risk.description,
        category=Category(risk.category),
        likelihood=risk.likelihood,
        impact=risk.impact,
        score=risk.likelihood * risk.impact,
        level=level_of(risk.likelihood, risk.impact),
        owner=risk.owner,
        triggers=risk.triggers,
        controls=list(risk.controls),
        plan=Plan(
            control_target=risk.control_target,
            measures=list(risk.measures),
            response_flow=risk.response_flow,
            verification=risk.verification,
        ),
        status=RiskStatus(risk.status),
        review_interval_days=risk.review_interval_days,
        last_reviewed_on=risk.last_reviewed_on,
        next_review_on=risk.next_review_on,
        review_overdue=risk.status == RiskStatus.open and risk.next_review_on < today,
        created_by=risk.created_by,
        created_at=risk.created_at,
        updated_at=risk.updated_at,
    )


async def create(
    session: AsyncSession, data: RiskCreate, *, actor: str, today: date, default_interval_days: int
) -> RiskView:
    interval = data.review_interval_days or default_interval_days
    risk = RegisterRisk(
        id=uuid.uuid4(),
        title=data.title,
        description=data.description,
        category=data.category.value,
        likelihood=data.likelihood,
        impact=data.impact,
        owner=data.owner,
        triggers=data.triggers,
        controls=data.controls,
        control_target=data.plan.control_target,
        measures=data.plan.measures,
        response_flow=data.plan.response_flow,
        verification=data.plan.verification,
        status=RiskStatus.open.value,
        review_interval_days=interval,
        next_review_on=data.next_review_on or today + timedelta(days=interval),
        created_by=actor,
    )
    await repository.add(session, risk)
    await session.refresh(risk)
    await audit_log.append(
        session,
        actor=actor,
        action="register.risk_created",
        target=str(risk.id),
        detail={"category": risk.category, "likelihood": risk.likelihood, "impact": risk.impact},
    )
    return view(risk, today)


async def _get(session: AsyncSession, risk_id: uuid.UUID, *, lock: bool = False) -> RegisterRisk:
    risk = await repository.get(session, risk_id, lock=lock)
    if risk is None:
        raise RiskNotFound()
    return risk


async def get(session: AsyncSession, risk_id: uuid.UUID, today: date) -> RiskView:
    return view(await _get(session, risk_id), today)


async def update(session: AsyncSession, risk_id: uuid.UUID, data: RiskUpdate, *, actor: str, today: date) -> RiskView:
    risk = await _get(session, risk_id, lock=True)
    changed = data.model_dump(exclude_unset=True, exclude={"plan"}, mode="json")
    for name, value in changed.items():
        setattr(risk, name, value)
    if data.plan is not None:
        risk.control_target = data.plan.control_target
        risk.measures = data.plan.measures
        risk.response_flow = data.plan.response_flow
        risk.verification = data.plan.verification
        changed["plan"] = True
    risk.updated_at = _now()
    await flush_pending(session)
    await audit_log.append(
        session, actor=actor, action="register.risk_updated", target=str(risk.id), detail={"fields": sorted(changed)}
    )
    return view(risk, today)


async def review(
    session: AsyncSession, risk_id: uuid.UUID, data: ReviewCreate, *, actor: str, today: date
) -> ReviewView:
    """Re-assess the risk; its next review is due one interval from today."""
    risk = await _get(session, risk_id, lock=True)
    row = RegisterReview(
        id=uuid.uuid4(),
        risk_id=risk.id,
        reviewed_on=today,
        reviewer=actor,
        likelihood=data.likelihood,
        impact=data.impact,
        note=data.note,
    )
    await repository.add(session, row)
    before = (risk.likelihood, risk.impact)
    risk.likelihood, risk.impact = data.likelihood, data.impact
    risk.last_reviewed_on = today
    risk.next_review_on = today + timedelta(days=risk.review_interval_days)
    risk.updated_at = _now()
    await flush_pending(session)
    await audit_log.append(
        session,
        actor=actor,
        action="register.risk_reviewed",
        target=str(risk.id),
        detail={"before": list(before), "after": [data.likelihood, data.impact], "review_id": str(row.id)},
    )
    return _review_view(row)


def _review_view(row: RegisterReview) -> ReviewView:
    return ReviewView(
        id=row.id,
        reviewed_on=row.reviewed_on,
        reviewer=row.reviewer,
        likelihood=row.likelihood,
        impact=row.impact,
        level=level_of(row.likelihood, row.impact),
        note=row.note,
    )


async def reviews(session: AsyncSession, risk_id: uuid.UUID) -> list[ReviewView]:
    await _get(session, risk_id)
    return [_review_view(row) for row in await repository.reviews(session, risk_id)]


async def search(
    session: AsyncSession,
    today: date,
    *,
    category: str | None = None,
    status: str | None = None,
    level: str | None = None,
    overdue: bool | None = None,
) -> list[RiskView]:
    views = [view(risk, today) for risk in await repository.search(session, category=category, status=status)]
    if level is not None:
        views = [v for v in views if v.level == level]
    if overdue is not None:
        views = [v for v in views if v.review_overdue is overdue]
    return views


async def heat_map(session: AsyncSession, today: date, *, category: str | None = None) -> HeatMap:
    """Open risks counted per likelihood x impact cell (all 25 cells, high likelihood first)."""
    risks = await search(session, today, category=category, status=RiskStatus.open.value)
    cells = []
    for likelihood in range(5, 0, -1):
        for impact in range(1, 6):
            inside = [r.title for r in risks if r.likelihood == likelihood and r.impact == impact]
            cells.append(
                HeatCell(
                    likelihood=likelihood,
                    impact=impact,
                    level=level_of(likelihood, impact),
                    count=len(inside),
                    risks=inside,
                )
            )
    return HeatMap(cells=cells, overdue_reviews=sum(1 for r in risks if r.review_overdue))


def _now() -> datetime:
    return datetime.now(UTC)
