"""The analysts' alert queue (staff, permissions `alert:read` / `alert:modify`) and its summary for the
incidents KPI page (internal, scope `risk:read`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from kit.auth import Principal, RequireScope
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.risk.alerts import repository, service
from services.risk.alerts.schemas import AlertOut, AlertsOut, AlertsSummaryOut, AssignIn, CommentIn, ResolveIn
from services.risk.errors import AlertNotFound

staff = APIRouter(prefix="/staff/alerts", tags=["alerts"])
internal = APIRouter(prefix="/internal/alerts", tags=["alerts"], dependencies=[Depends(RequireScope("risk:read"))])

Reader = Annotated[Principal, Depends(RequirePermission("alert:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("alert:modify"))]


@staff.get("", response_model=AlertsOut, summary="The alert queue")
async def queue(  # noqa: PLR0917 (query parameters)
    session: DBSession,
    principal: Reader,
    status: Annotated[Literal["open", "assigned", "resolved"] | None, Query()] = None,
    category: Annotated[Literal["behaviour", "transaction", "account"] | None, Query()] = None,
    grade: Annotated[int | None, Query(ge=1, le=4, description="This grade and more severe.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlertsOut:
    """Most severe first (grade 1 = critical), then by score."""
    rows = await repository.queue(session, status=status, category=category, grade=grade, limit=limit)
    return AlertsOut(alerts=[AlertOut.of(r) for r in rows])


@staff.get("/{alert_id}", response_model=AlertOut, summary="One alert with its comments")
async def show(alert_id: uuid.UUID, session: DBSession, principal: Reader) -> AlertOut:
    alert = await repository.locked(session, alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return AlertOut.of(alert, await repository.comments(session, alert_id))


@staff.post("/{alert_id}/assignment", response_model=AlertOut, summary="Assign")
async def assign(alert_id: uuid.UUID, body: AssignIn, session: DBSession, principal: Modifier) -> AlertOut:
    alert = await service.assign(session, alert_id, body.assignee or principal.subject, actor=principal.subject)
    return AlertOut.of(alert, await repository.comments(session, alert_id))


@staff.post("/{alert_id}/comments", response_model=AlertOut, summary="Comment")
async def comment(alert_id: uuid.UUID, body: CommentIn, session: DBSession, principal: Modifier) -> AlertOut:
    alert = await service.comment(session, alert_id, body.body, actor=principal.subject)
    return AlertOut.of(alert, await repository.comments(session, alert_id))


@staff.post("/{alert_id}/resolution", response_model=AlertOut, summary="Resolve with a label")
async def resolve(alert_id: uuid.UUID, body: ResolveIn, session: DBSession, principal: Modifier) -> AlertOut:
    """fraud / genuine labels the transaction (baselines and the training set follow)."""
    alert = await service.resolve(session, alert_id, str(body.label), body.comment, actor=principal.subject)
    return AlertOut.of(alert, await repository.comments(session, alert_id))


@internal.get("/summary", response_model=AlertsSummaryOut, summary="Alerts per analyst and their outcomes")
async def summary(
    session: DBSession,
    start: Annotated[datetime, Query(alias="from", description="Created at or after (with a time zone).")],
    end: Annotated[datetime, Query(alias="to", description="Created before (with a time zone).")],
) -> AlertsSummaryOut:
    """Alerts created in [from, to) per analyst (the assignee, else who resolved it; null: nobody took
    them): how many, still open, resolved, and resolved by outcome. The incidents KPI page reads it."""
    return await service.summary(session, start, end)
