"""SLA clocks (R-II.3.2): durable deadlines, documented pauses, escalation when near and when breached.

A clock is a row with timestamps (started, warn, due), never a timer in a
process: any replica's worker finds the clocks that crossed a line with
`FOR UPDATE SKIP LOCKED`, so a restart or a failover loses none and several
replicas escalate each crossing once.

Clocks of an incident: `acknowledge` and `resolve` per level (settings
`sla_targets`); an account takeover adds `verify` (10 min) and `freeze`
(30 min). Met: `verify` when the incident is verified or rejected; `freeze`
when the playbook's freeze step succeeded (or was skipped with a reason);
`acknowledge` at the first staff action (a transition or an assignment);
`resolve` when the incident is recovered, closed or rejected.

Pauses (the only documented conditions): the `resolve` clock may pause while
waiting for the customer or for an external party (law enforcement, a
regulator, a vendor). The verify and freeze clocks protect the customer and
never pause. Resuming moves the deadline by the time paused.

Nearing (past `sla_warn_fraction` of the target) escalates to the next
person (the on-call secondary); a breach is recorded and escalates to the
manager on call.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import timeline
from services.incidents.config import IncidentsSettings
from services.incidents.errors import AlreadyClosed, ClockNotFound, ClockNotPausable, RecordNotFound
from services.incidents.models import ClockKind, Escalation, Incident, IncidentState, IncidentType, SlaClock
from services.incidents.sla import repository
from services.incidents.team import service as team


class PauseReason(enum.StrEnum):
    waiting_for_customer = "waiting_for_customer"
    waiting_for_external_party = "waiting_for_external_party"


PAUSABLE = frozenset({ClockKind.resolve.value})


def _clock(incident_id: uuid.UUID, kind: ClockKind, minutes: int, now: datetime, fraction: float) -> SlaClock:
    target = minutes * 60
    return SlaClock(
        incident_id=incident_id,
        kind=kind.value,
        target_seconds=target,
        started_at=now,
        due_at=now + timedelta(seconds=target),
        warn_at=now + timedelta(seconds=target * fraction),
        paused_seconds=0,
    )


async def start_clocks(session: AsyncSession, incident: Incident, settings: IncidentsSettings, now: datetime) -> None:
    fraction = settings.sla_warn_fraction
    target = settings.sla_targets[str(incident.level)]
    session.add(_clock(incident.id, ClockKind.acknowledge, target.acknowledge_minutes, now, fraction))
    session.add(_clock(incident.id, ClockKind.resolve, target.resolve_minutes, now, fraction))
    if incident.type == IncidentType.account_takeover.value:
        session.add(_clock(incident.id, ClockKind.verify, settings.takeover_verify_minutes, now, fraction))
        session.add(_clock(incident.id, ClockKind.freeze, settings.takeover_freeze_minutes, now, fraction))
    await session.flush()


async def meet(session: AsyncSession, incident_id: uuid.UUID, kind: ClockKind, now: datetime) -> SlaClock | None:
    clock = await repository.clock(session, incident_id, kind.value)
    if clock is None or clock.met_at is not None:
        return clock
    if clock.paused_at is not None:
        _unpause(clock, now)
    clock.met_at = now
    await timeline.record(
        session,
        incident_id,
        "sla_met",
        at=now,
        actor="incidents",
        actor_kind="service",
        detail={"clock": kind.value, "late": clock.breached_at is not None, "due_at": clock.due_at.isoformat()},
        audit=False,
    )
    return clock


async def on_transition(session: AsyncSession, incident_id: uuid.UUID, state: IncidentState, now: datetime) -> None:
    """Clocks a transition stops."""
    await meet(session, incident_id, ClockKind.acknowledge, now)
    if state in (IncidentState.verified, IncidentState.rejected):
        await meet(session, incident_id, ClockKind.verify, now)
    if state is IncidentState.rejected:
        await meet(session, incident_id, ClockKind.freeze, now)
    if state in (IncidentState.recovered, IncidentState.closed, IncidentState.rejected):
        await meet(session, incident_id, ClockKind.resolve, now)


def _unpause(clock: SlaClock, now: datetime) -> None:
    assert clock.paused_at is not None
    paused = now - clock.paused_at
    clock.due_at += paused
    clock.warn_at += paused
    clock.paused_seconds += int(paused.total_seconds())
    clock.paused_at = None
    clock.pause_reason = None


async def pause(
    session: AsyncSession, incident_id: uuid.UUID, kind: ClockKind, reason: PauseReason, *, actor: str, now: datetime
) -> SlaClock:
    clock = await repository.clock(session, incident_id, kind.value)
    if clock is None:
        raise ClockNotFound(f"incident {incident_id} has no {kind} clock")
    if kind.value not in PAUSABLE:
        raise ClockNotPausable(f"the {kind} clock never pauses")
    if clock.met_at is not None or clock.paused_at is not None or clock.breached_at is not None:
        raise ClockNotPausable("only a running clock within its deadline can pause")
    clock.paused_at = now
    clock.pause_reason = reason.value
    await timeline.record(
        session,
        incident_id,
        "sla_paused",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"clock": kind.value, "reason": reason.value},
    )
    return clock


async def resume(
    session: AsyncSession, incident_id: uuid.UUID, kind: ClockKind, *, actor: str, now: datetime
) -> SlaClock:
    clock = await repository.clock(session, incident_id, kind.value)
    if clock is None:
        raise ClockNotFound(f"incident {incident_id} has no {kind} clock")
    if clock.paused_at is None:
        raise ClockNotPausable("the clock is not paused")
    _unpause(clock, now)
    await timeline.record(
        session,
        incident_id,
        "sla_resumed",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"clock": kind.value, "due_at": clock.due_at.isoformat()},
    )
    return clock


async def tick(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """Escalate clocks that crossed their warning or deadline; returns (warned, breached)."""
    warned = breached = 0
    for clock in await repository.due_for_escalation(session, now):
        if clock.warned_at is None and clock.warn_at <= now:
            clock.warned_at = now
            warned += 1
            await team.escalate(
                session,
                incident_id=clock.incident_id,
                kind="sla_nearing",
                subject_ref=clock.kind,
                tier="secondary",
                message=f"the {clock.kind} clock nears its deadline {clock.due_at.isoformat()}",
                now=now,
                due_at=clock.due_at,
            )
        if clock.breached_at is None and clock.due_at <= now:
            clock.breached_at = now
            breached += 1
            await team.escalate(
                session,
                incident_id=clock.incident_id,
                kind="sla_breached",
                subject_ref=clock.kind,
                tier="manager",
                message=f"the {clock.kind} clock breached its deadline {clock.due_at.isoformat()}",
                now=now,
                due_at=clock.due_at,
            )
            await timeline.record(
                session,
                clock.incident_id,
                "sla_breached",
                at=now,
                actor="incidents",
                actor_kind="service",
                detail={"clock": clock.kind, "due_at": clock.due_at.isoformat()},
            )
    return warned, breached


async def clocks_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[SlaClock]:
    return await repository.clocks_of(session, incident_id)


async def breaches(session: AsyncSession, start: datetime, end: datetime) -> Sequence[SlaClock]:
    return await repository.breaches(session, start, end)


async def queue(
    session: AsyncSession, *, recipient: str | None, tier: str | None, open_only: bool, limit: int
) -> Sequence[Escalation]:
    return await repository.escalations(session, recipient=recipient, tier=tier, open_only=open_only, limit=limit)


async def acknowledge_escalation(
    session: AsyncSession, escalation_id: uuid.UUID, *, actor: str, now: datetime
) -> Escalation:
    escalation = await repository.escalation(session, escalation_id)
    if escalation is None:
        raise RecordNotFound(f"no escalation {escalation_id}")
    if escalation.acknowledged_at is not None:
        raise AlreadyClosed("the escalation was already acknowledged")
    escalation.acknowledged_at = now
    escalation.acknowledged_by = actor
    await timeline.record(
        session,
        escalation.incident_id,
        "escalation_acknowledged",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"escalation_id": str(escalation.id), "kind": escalation.kind},
    )
    return escalation
