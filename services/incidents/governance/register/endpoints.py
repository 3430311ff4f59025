"""Staff routes of the risk register (read: risk:read; change and review: risk:modify)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from kit.auth import StaffUser
from kit.db import DBSession
from services.incidents.governance.deps import RiskReader, RiskWriter, Settings, Today
from services.incidents.governance.register import service
from services.incidents.governance.register.heatmap import render_svg
from services.incidents.governance.register.matrix import Level
from services.incidents.governance.register.schemas import (
    Category,
    HeatMap,
    ReviewCreate,
    ReviewView,
    RiskCreate,
    RiskStatus,
    RiskUpdate,
    RiskView,
)

staff = APIRouter(prefix="/staff/register", tags=["risk register"])


@staff.post("/risks", response_model=RiskView, status_code=201, dependencies=[RiskWriter])
async def create_risk(
    data: RiskCreate, staff_user: StaffUser, session: DBSession, today: Today, settings: Settings
) -> RiskView:
    """Add a risk: its level follows from likelihood x impact by the seed's matrix."""
    return await service.create(
        session, data, actor=staff_user.subject, today=today, default_interval_days=settings.risk_review_interval_days
    )


@staff.get("/risks", response_model=list[RiskView], dependencies=[RiskReader])
async def list_risks(
    *,
    session: DBSession,
    today: Today,
    category: Annotated[Category | None, Query()] = None,
    status: Annotated[RiskStatus | None, Query()] = None,
    level: Annotated[Level | None, Query()] = None,
    overdue: Annotated[bool | None, Query(description="Only risks whose review is (or is not) overdue.")] = None,
) -> list[RiskView]:
    """The register, highest score first."""
    return await service.search(
        session,
        today,
        category=category.value if category else None,
        status=status.value if status else None,
        level=level.value if level else None,
        overdue=overdue,
    )


@staff.get("/risks/{risk_id}", response_model=RiskView, dependencies=[RiskReader])
async def get_risk(risk_id: uuid.UUID, session: DBSession, today: Today) -> RiskView:
    return await service.get(session, risk_id, today)


@staff.patch("/risks/{risk_id}", response_model=RiskView, dependencies=[RiskWriter])
async def update_risk(
    risk_id: uuid.UUID, data: RiskUpdate, staff_user: StaffUser, session: DBSession, today: Today
) -> RiskView:
    """Change a risk's description, owner, controls, plan or review schedule (re-rate it with a review)."""
    return await service.update(session, risk_id, data, actor=staff_user.subject, today=today)


@staff.post("/risks/{risk_id}/reviews", response_model=ReviewView, status_code=201, dependencies=[RiskWriter])
async def review_risk(
    risk_id: uuid.UUID, data: ReviewCreate, staff_user: StaffUser, session: DBSession, today: Today
) -> ReviewView:
    """Review (re-assess) a risk; the next review is due one interval later."""
    return await service.review(session, risk_id, data, actor=staff_user.subject, today=today)


@staff.get("/risks/{risk_id}/reviews", response_model=list[ReviewView], dependencies=[RiskReader])
async def list_reviews(risk_id: uuid.UUID, session: DBSession) -> list[ReviewView]:
    return await service.reviews(session, risk_id)


@staff.get("/heatmap", response_model=HeatMap, dependencies=[RiskReader])
async def heat_map(session: DBSession, today: Today, category: Annotated[Category | None, Query()] = None) -> HeatMap:
    """Open risks per likelihood x impact cell, as data."""
    return await service.heat_map(session, today, category=category.value if category else None)


@staff.get(
    "/heatmap.svg",
    response_class=Response,
    dependencies=[RiskReader],
    responses={200: {"content": {"image/svg+xml": {}}, "description": "The 5x5 heat map as SVG."}},
)
async def heat_map_svg(
    session: DBSession, today: Today, category: Annotated[Category | None, Query()] = None
) -> Response:
    """The 5x5 heat map as an SVG image (open risks per cell, coloured by level)."""
    heat = await service.heat_map(session, today, category=category.value if category else None)
    caption = "Risk register heat map" + (f" ({category.value})" if category else "")
    return Response(
        render_svg(heat, caption=caption),
        media_type="image/svg+xml",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
        },
    )
