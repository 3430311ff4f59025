"""SLA routes: an incident's clocks, documented pauses, the escalation queue and the breach report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.incidents.deps import Now
from services.incidents.errors import InvalidPeriod
from services.incidents.incidents import service as incidents
from services.incidents.models import ClockKind
from services.incidents.sla import service
from services.incidents.sla.schemas import ClockOut, EscalationOut, PauseBody

staff = APIRouter(prefix="/staff", tags=["sla"])

Reader = Annotated[Principal, Depends(RequirePermission("incident:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("incident:modify"))]


@staff.get("/incidents/{incident_id}/clocks", response_model=list[ClockOut], summary="The incident's SLA clocks")
async def clocks(incident_id: uuid.UUID, session: DBSession, principal: Reader) -> list[ClockOut]:
    """Deadlines as timestamps: started, warning, due, met, paused, breached."""
    await incidents.get(session, incident_id)
    return [ClockOut.of(c) for c in await service.clocks_of(session, incident_id)]


@staff.post("/incidents/{incident_id}/clocks/{kind}/pause", response_model=ClockOut, summary="Pause a clock")
async def pause(
    incident_id: uuid.UUID, *, kind: ClockKind, body: PauseBody, session: DBSession, now: Now, principal: Modifier
) -> ClockOut:
    """Only the resolution clock, only while waiting for the customer or an external party (409 otherwise)."""
    await incidents.get(session, incident_id, for_update=True)
    return ClockOut.of(await service.pause(session, incident_id, kind, body.reason, actor=principal.subject, now=now))


@staff.post("/incidents/{incident_id}/clocks/{kind}/resume", response_model=ClockOut, summary="Resume a clock")
async def resume(
    incident_id: uuid.UUID, kind: ClockKind, session: DBSession, now: Now, principal: Modifier
) -> ClockOut:
    """The deadline moves by the time paused."""
    await incidents.get(session, incident_id, for_update=True)
    return ClockOut.of(await service.resume(session, incident_id, kind, actor=principal.subject, now=now))


@staff.get("/escalations", response_model=list[EscalationOut], summary="Escalations: my queue, or a tier's")
async def escalations(
    session: DBSession,
    *,
    principal: Reader,
    tier: Annotated[
        str | None, Query(max_length=16, description="Unclaimed escalations of a tier (nobody on call).")
    ] = None,
    everyone: bool = False,
    open_only: bool = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[EscalationOut]:
    """By default the caller's own open escalations (clocks nearing or breached, reports up the chain
    overdue, corrective actions overdue); `tier=manager` lists those with nobody on call to take them."""
    recipient = None if (everyone or tier) else principal.subject
    rows = await service.queue(session, recipient=recipient, tier=tier, open_only=open_only, limit=limit)
    return [EscalationOut.of(e) for e in rows]


@staff.post("/escalations/{escalation_id}/acknowledge", response_model=EscalationOut, summary="Acknowledge")
async def acknowledge(escalation_id: uuid.UUID, session: DBSession, now: Now, principal: Reader) -> EscalationOut:
    return EscalationOut.of(
        await service.acknowledge_escalation(session, escalation_id, actor=principal.subject, now=now)
    )


@staff.get("/sla/breaches", response_model=list[ClockOut], summary="SLA breaches in a period")
async def breaches(
    session: DBSession,
    principal: Reader,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
) -> list[ClockOut]:
    """Every clock that breached in [from, to)."""
    if end <= start:
        raise InvalidPeriod("`to` must be after `from`")
    return [ClockOut.of(c) for c in await service.breaches(session, start, end)]
