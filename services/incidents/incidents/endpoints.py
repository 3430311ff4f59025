"""Incident routes: intake from services and customers, the staff desk."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status

from kit.auth import Customer, Principal, RequireScope
from kit.db import DBSession
from kit.outbox import IdempotencyKey
from kit.permissions import RequirePermission
from services.incidents.config import LEVEL_CRITERIA
from services.incidents.deps import Now, Settings, wake_outbox
from services.incidents.errors import RecordNotFound
from services.incidents.incidents import service
from services.incidents.incidents.schemas import (
    EventOut,
    IncidentDetail,
    IncidentOut,
    IncidentPatch,
    LevelCriteria,
    ObservableIn,
    ObservableOut,
    RegulatorReportOut,
    ReportIn,
    ReportOut,
    ReportRecordOut,
    StaffOpen,
    TakeoverReportIn,
    TransitionIn,
)
from services.incidents.models import IncidentSource, IncidentState, IncidentType, inbox

internal = APIRouter(prefix="/internal", tags=["incidents"])
customer = APIRouter(prefix="/customer", tags=["incidents"])
staff = APIRouter(prefix="/staff", tags=["incidents"])

Reader = Annotated[Principal, Depends(RequirePermission("incident:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("incident:modify"))]


@internal.post(
    "/reports",
    response_model=ReportOut,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident (risk, identity)",
    responses={200: {"model": ReportOut, "description": "Attached to an open incident (or a repeated delivery)."}},
)
async def report_from_service(
    body: ReportIn,
    *,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: DBSession,
    settings: Settings,
    now: Now,
    key: IdempotencyKey,
    caller: Annotated[Principal, Depends(RequireScope("incidents:report"))],
) -> ReportOut:
    """Opens an incident (201, `created: true`) or attaches the report to the open incident of the same
    type and `correlation_key` (200, `created: false`): one takeover wave is one incident. A repeated
    delivery (same `Idempotency-Key`) answers 200 with the incident it went to and changes nothing."""
    if not await inbox.first_delivery(session, key):
        previous = await service.incident_of_delivery(session, key)
        response.status_code = status.HTTP_200_OK
        if previous is None:
            raise RecordNotFound("this delivery was already applied")
        return ReportOut(incident_id=previous, created=False)
    incident, created = await service.report(
        session,
        settings,
        service.Intake(
            source=body.source,
            type=body.type,
            level=body.level,
            correlation_key=body.correlation_key,
            summary=body.summary,
            occurred_at=body.occurred_at,
            reporter=caller.subject,
            reporter_kind="service",
            customer_id=body.customer_id,
            account_id=body.account_id,
            staff_id=body.staff_id,
            reference_kind=body.reference.kind,
            reference_id=body.reference.id,
            idempotency_key=key,
            observables=body.observables,
        ),
        now,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    background.add_task(wake_outbox, request)
    return ReportOut(incident_id=incident.id, created=created)


@customer.post(
    "/takeover-reports",
    response_model=ReportOut,
    status_code=status.HTTP_201_CREATED,
    summary="Report that my account was taken over",
    responses={200: {"model": ReportOut, "description": "An open takeover incident exists: the report joins it."}},
)
async def report_takeover(
    body: TakeoverReportIn,
    *,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: DBSession,
    settings: Settings,
    now: Now,
    principal: Customer,
) -> ReportOut:
    """The customer's own account (the token's subject) is reported taken over: an account-takeover
    incident opens (or the report joins the open one for this account), the playbook freezes the
    account and revokes every session at once, and the 10-minute verification and 30-minute freeze
    clocks start (R-II.3.2). The token used here stops working once the freeze lands."""
    account = principal.subject
    incident, created = await service.report(
        session,
        settings,
        service.Intake(
            source=IncidentSource.customer_report,
            type=IncidentType.account_takeover,
            level=None,
            correlation_key=f"account:{account}",
            summary=f"customer reports account takeover: {body.description}".strip().rstrip(":"),
            occurred_at=body.noticed_at or now,
            reporter=account,
            reporter_kind="customer",
            customer_id=_uuid_or_none(account),
            account_id=account,
            reference_kind="customer_report",
            reference_id=account,
        ),
        now,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    background.add_task(wake_outbox, request)
    return ReportOut(incident_id=incident.id, created=created)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@staff.get("/incident-levels", response_model=list[LevelCriteria], summary="The level criteria (M6.1)")
async def levels(principal: Reader) -> list[LevelCriteria]:
    """Level 1 (major) to 4 (general) with the criteria staff apply."""
    return [LevelCriteria(level=level, criteria=text) for level, text in LEVEL_CRITERIA.items()]


@staff.post("/incidents", response_model=IncidentOut, status_code=status.HTTP_201_CREATED, summary="Open an incident")
async def open_incident(
    body: StaffOpen,
    *,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: DBSession,
    settings: Settings,
    now: Now,
    principal: Modifier,
) -> IncidentOut:
    """Staff open an incident by hand (an intrusion found, a leak reported by a partner...). With a
    `correlation_key` of an open incident of the same type the report joins it (200)."""
    incident, created = await service.report(
        session,
        settings,
        service.Intake(
            source=IncidentSource.staff_report,
            type=body.type,
            level=body.level,
            correlation_key=body.correlation_key or f"staff:{uuid.uuid4()}",
            summary=body.summary,
            occurred_at=body.occurred_at,
            reporter=principal.subject,
            reporter_kind="staff",
            customer_id=body.customer_id,
            account_id=body.account_id,
            staff_id=body.staff_id,
            reference_kind="staff_report",
            reference_id=principal.subject,
            cause=body.cause,
            scope=body.scope.model_dump(),
            observables=body.observables,
        ),
        now,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    background.add_task(wake_outbox, request)
    return IncidentOut.of(incident)


@staff.get("/incidents", response_model=list[IncidentOut], summary="List incidents")
async def list_incidents(
    session: DBSession,
    *,
    principal: Reader,
    state: IncidentState | None = None,
    type: IncidentType | None = None,
    level: Annotated[int | None, Query(ge=1, le=4)] = None,
    customer_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[IncidentOut]:
    """Newest first."""
    rows = await service.listing(
        session,
        state=state,
        incident_type=type,
        level=level,
        customer_id=customer_id,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
    )
    return [IncidentOut.of(i) for i in rows]


@staff.get("/incidents/{incident_id}", response_model=IncidentDetail, summary="One incident")
async def get_incident(incident_id: uuid.UUID, session: DBSession, principal: Reader) -> IncidentDetail:
    """The fixed fields, every report that joined it and its observables."""
    incident = await service.get(session, incident_id)
    return IncidentDetail(
        **IncidentOut.of(incident).model_dump(),
        reports=[ReportRecordOut.of(r) for r in await service.reports_of(session, incident_id)],
        observables=[ObservableOut.of(o) for o in await service.observables_of(session, incident_id)],
    )


@staff.patch("/incidents/{incident_id}", response_model=IncidentOut, summary="Refine level, cause, scope, summary")
async def patch_incident(
    incident_id: uuid.UUID,
    *,
    body: IncidentPatch,
    session: DBSession,
    settings: Settings,
    now: Now,
    principal: Modifier,
) -> IncidentOut:
    """Every change keeps the old value in the timeline with the reason."""
    incident = await service.get(session, incident_id, for_update=True)
    await service.update(session, settings, incident, body, actor=principal.subject, now=now)
    return IncidentOut.of(incident)


@staff.post("/incidents/{incident_id}/transitions", response_model=IncidentOut, summary="Move the incident on")
async def transition(
    incident_id: uuid.UUID, body: TransitionIn, session: DBSession, now: Now, principal: Modifier
) -> IncidentOut:
    """reported -> verified | rejected; verified -> contained | rejected; contained -> eradicated ->
    recovered -> closed. Who and why go to the audit chain. 409 `invalid_transition` otherwise."""
    incident = await service.get(session, incident_id, for_update=True)
    await service.transition(
        session, incident, body.to, reason=body.reason, actor=principal.subject, actor_kind="staff", now=now
    )
    return IncidentOut.of(incident)


@staff.get("/incidents/{incident_id}/timeline", response_model=list[EventOut], summary="The incident's timeline")
async def get_timeline(incident_id: uuid.UUID, session: DBSession, principal: Reader) -> list[EventOut]:
    """Every report, transition, step outcome, assignment, escalation and breach, in order."""
    await service.get(session, incident_id)
    return [EventOut.of(e) for e in await service.timeline_of(session, incident_id)]


@staff.post("/incidents/{incident_id}/observables", response_model=list[ObservableOut], summary="Add observables")
async def add_observables(
    incident_id: uuid.UUID, body: list[ObservableIn], session: DBSession, now: Now, principal: Modifier
) -> list[ObservableOut]:
    """IPs, devices, payees, transactions, accounts; duplicates are ignored."""
    incident = await service.get(session, incident_id, for_update=True)
    await service.add_observables(session, incident, body, actor=principal.subject, now=now)
    return [ObservableOut.of(o) for o in await service.observables_of(session, incident_id)]


@staff.get(
    "/incidents/{incident_id}/regulator-report", response_model=RegulatorReportOut, summary="The regulator report"
)
async def get_regulator_report(
    incident_id: uuid.UUID, session: DBSession, now: Now, principal: Reader
) -> RegulatorReportOut:
    """Drafted by the playbook from the incident's fields for level 1 and 2, with its deadline."""
    report = await service.regulator_report(session, incident_id)
    if report is None:
        raise RecordNotFound("this incident has no regulator report (levels 1 and 2 get one)")
    return RegulatorReportOut.of(report, now)


@staff.post(
    "/incidents/{incident_id}/regulator-report/submitted",
    response_model=RegulatorReportOut,
    summary="Record that the regulator report was sent",
)
async def submit_regulator_report(
    incident_id: uuid.UUID, session: DBSession, now: Now, principal: Modifier
) -> RegulatorReportOut:
    incident = await service.get(session, incident_id, for_update=True)
    report = await service.submit_regulator_report(session, incident, actor=principal.subject, now=now)
    return RegulatorReportOut.of(report, now)
