"""Team routes: an incident's response team, the on-call rota with hand-over, reports up the chain."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.incidents.deps import Now
from services.incidents.incidents import service as incidents
from services.incidents.models import ClockKind
from services.incidents.sla import service as sla
from services.incidents.team import service
from services.incidents.team.schemas import (
    AssignBody,
    AssignmentOut,
    ChainReportOut,
    HandoverBody,
    ReportedBody,
    ShiftBody,
    ShiftOut,
)

staff = APIRouter(prefix="/staff", tags=["team"])

Reader = Annotated[Principal, Depends(RequirePermission("incident:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("incident:modify"))]


@staff.get("/incidents/{incident_id}/team", response_model=list[AssignmentOut], summary="The response team")
async def team(incident_id: uuid.UUID, session: DBSession, principal: Reader) -> list[AssignmentOut]:
    """Every assignment, current and released (with hand-over notes)."""
    await incidents.get(session, incident_id)
    return [AssignmentOut.of(a) for a in await service.team_of(session, incident_id)]


@staff.post(
    "/incidents/{incident_id}/team",
    response_model=AssignmentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Assign a role (incident commander, investigator, communications, approver)",
)
async def assign(
    incident_id: uuid.UUID, body: AssignBody, session: DBSession, now: Now, principal: Modifier
) -> AssignmentOut:
    """Whoever held the role is released with the hand-over note. An assignment acknowledges the incident."""
    await incidents.get(session, incident_id, for_update=True)
    assignment = await service.assign(
        session, incident_id, body.role, body.staff_id, actor=principal.subject, now=now, note=body.handover_note
    )
    await sla.meet(session, incident_id, ClockKind.acknowledge, now)
    return AssignmentOut.of(assignment)


@staff.get("/oncall", response_model=list[ShiftOut], summary="The on-call rota")
async def rota(
    session: DBSession,
    now: Now,
    principal: Reader,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> list[ShiftOut]:
    """Shifts overlapping [from, to) (default: the next seven days)."""
    start = start or now
    end = end or start + timedelta(days=7)
    return [ShiftOut.of(s) for s in await service.rota(session, start, end)]


@staff.post("/oncall/shifts", response_model=ShiftOut, status_code=status.HTTP_201_CREATED, summary="Add a shift")
async def add_shift(body: ShiftBody, session: DBSession, principal: Modifier) -> ShiftOut:
    """Tiers: primary (answers first), secondary (the next person), manager (breaches go to them)."""
    shift = await service.add_shift(
        session,
        tier=body.tier.value,
        staff_id=body.staff_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        actor=principal.subject,
    )
    return ShiftOut.of(shift)


@staff.post("/oncall/handover", response_model=ShiftOut, status_code=status.HTTP_201_CREATED, summary="Hand over")
async def handover(body: HandoverBody, session: DBSession, now: Now, principal: Modifier) -> ShiftOut:
    """The current shift of the tier ends now; the successor takes the rest of it, with the note."""
    shift = await service.handover(
        session, tier=body.tier.value, to_staff=body.to_staff_id, note=body.note, actor=principal.subject, now=now
    )
    return ShiftOut.of(shift)


@staff.get(
    "/incidents/{incident_id}/chain-reports", response_model=list[ChainReportOut], summary="Reporting up the chain"
)
async def chain(incident_id: uuid.UUID, session: DBSession, now: Now, principal: Reader) -> list[ChainReportOut]:
    """Who must be told of this incident (by its level, from settings) and by when; overdue ones escalate."""
    await incidents.get(session, incident_id)
    return [ChainReportOut.of(r, now) for r in await service.chain_of(session, incident_id)]


@staff.post(
    "/incidents/{incident_id}/chain-reports/{audience}/reported",
    response_model=ChainReportOut,
    summary="Record that an audience was told",
)
async def reported(
    incident_id: uuid.UUID, *, audience: str, body: ReportedBody, session: DBSession, now: Now, principal: Modifier
) -> ChainReportOut:
    await incidents.get(session, incident_id, for_update=True)
    report = await service.mark_reported(
        session, incident_id, audience, actor=principal.subject, now=now, channel=body.channel
    )
    return ChainReportOut.of(report, now)
