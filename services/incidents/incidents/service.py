"""Incidents (M6.1-6.3): intake with deduplication, the state machine, fixed fields and their changes.

A report opens an incident or, when an open incident of the same type has the
same correlation key, joins it: a wave of related reports is one incident,
every report kept. Opening one copies its type's playbook, starts its SLA
clocks, plans its reports up the chain and starts the playbook's first steps,
all in the report's transaction.

States: reported -> verified | rejected; verified -> contained | rejected;
contained -> eradicated -> recovered -> closed. Each transition records who
and why in the timeline and the audit chain. A verified incident whose
containment steps have all succeeded (or were skipped with a reason) moves to
contained by itself, recorded as the service's act with that reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import timeline
from services.incidents.config import IncidentsSettings
from services.incidents.errors import AlreadyClosed, IncidentNotFound, InvalidTransition, RecordNotFound
from services.incidents.incidents import repository
from services.incidents.incidents.schemas import IncidentPatch, ObservableIn
from services.incidents.models import (
    Incident,
    IncidentEvent,
    IncidentReport,
    IncidentSource,
    IncidentState,
    IncidentType,
    Observable,
    RegulatorReport,
)
from services.incidents.playbooks import repository as playbook_repository
from services.incidents.playbooks import service as playbooks
from services.incidents.sla import service as sla
from services.incidents.team import service as team

SYSTEM = "incidents"

TRANSITIONS: dict[IncidentState, frozenset[IncidentState]] = {
    IncidentState.reported: frozenset({IncidentState.verified, IncidentState.rejected}),
    IncidentState.verified: frozenset({IncidentState.contained, IncidentState.rejected}),
    IncidentState.contained: frozenset({IncidentState.eradicated}),
    IncidentState.eradicated: frozenset({IncidentState.recovered}),
    IncidentState.recovered: frozenset({IncidentState.closed}),
    IncidentState.rejected: frozenset(),
    IncidentState.closed: frozenset(),
}

STAMP = {
    IncidentState.verified: "verified_at",
    IncidentState.rejected: "rejected_at",
    IncidentState.contained: "contained_at",
    IncidentState.eradicated: "eradicated_at",
    IncidentState.recovered: "recovered_at",
    IncidentState.closed: "closed_at",
}


@dataclass
class Intake:
    """A report, whoever made it."""

    source: IncidentSource
    type: IncidentType
    level: int | None
    correlation_key: str
    summary: str
    occurred_at: datetime
    reporter: str
    reporter_kind: str
    customer_id: uuid.UUID | None = None
    account_id: str | None = None
    staff_id: uuid.UUID | None = None
    reference_kind: str | None = None
    reference_id: str | None = None
    idempotency_key: str | None = None
    cause: str = ""
    scope: dict[str, Any] = field(default_factory=dict)
    observables: Sequence[ObservableIn] = ()


def _scope(intake: Intake) -> dict[str, Any]:
    scope: dict[str, Any] = {"accounts": [], "staff": [], "systems": [], "records": 0}
    scope.update(intake.scope)
    if intake.account_id and intake.account_id not in scope["accounts"]:
        scope["accounts"] = [*scope["accounts"], intake.account_id]
    if intake.staff_id and str(intake.staff_id) not in scope["staff"]:
        scope["staff"] = [*scope["staff"], str(intake.staff_id)]
    return scope


async def report(
    session: AsyncSession, settings: IncidentsSettings, intake: Intake, now: datetime, *, _retry: int = 0
) -> tuple[Incident, bool]:
    """Open an incident for the report, or attach the report to the open one it belongs to."""
    level = intake.level or settings.default_levels.get(intake.type.value, 4)
    new_id = uuid.uuid4()
    inserted = await repository.insert_unless_open(
        session,
        {
            "id": new_id,
            "type": intake.type.value,
            "level": level,
            "state": IncidentState.reported.value,
            "source": intake.source.value,
            "correlation_key": intake.correlation_key,
            "summary": intake.summary,
            "cause": intake.cause,
            "reporter": intake.reporter,
            "reporter_kind": intake.reporter_kind,
            "customer_id": intake.customer_id,
            "account_id": intake.account_id,
            "staff_id": intake.staff_id,
            "scope": _scope(intake),
            "occurred_at": intake.occurred_at,
            "discovered_at": now,
            "report_count": 1,
            "created_at": now,
            "updated_at": now,
        },
    )
    if inserted is not None:
        incident = await repository.get(session, inserted, for_update=True)
        assert incident is not None
        created = True
    else:
        existing = await repository.open_with_key(session, intake.type.value, intake.correlation_key)
        if existing is None:  # closed between the insert and the lookup: open a fresh one
            if _retry >= 3:
                raise InvalidTransition("the incident of this report kept closing; report again")
            return await report(session, settings, intake, now, _retry=_retry + 1)
        incident = existing
        created = False
    session.add(
        IncidentReport(
            incident_id=incident.id,
            source=intake.source.value,
            reporter=intake.reporter,
            reporter_kind=intake.reporter_kind,
            idempotency_key=intake.idempotency_key,
            summary=intake.summary,
            level=intake.level,
            reference_kind=intake.reference_kind,
            reference_id=intake.reference_id,
            occurred_at=intake.occurred_at,
            received_at=now,
        )
    )
    for observable in intake.observables:
        await repository.add_observable(
            session, incident.id, observable.kind.value, observable.value, actor=intake.reporter, now=now
        )
    if created:
        await _opened(session, settings, incident, now, intake)
    else:
        await _attached(session, settings, incident, intake, now)
    return incident, created


async def _opened(
    session: AsyncSession, settings: IncidentsSettings, incident: Incident, now: datetime, intake: Intake
) -> None:
    playbook = await playbooks.instantiate(session, incident)
    await sla.start_clocks(session, incident, settings, now)
    await team.plan_chain(session, incident.id, incident.level, settings, now)
    await timeline.record(
        session,
        incident.id,
        "opened",
        at=now,
        actor=intake.reporter,
        actor_kind=intake.reporter_kind,
        detail={
            "type": incident.type,
            "level": incident.level,
            "source": incident.source,
            "playbook_version": playbook.version if playbook else None,
            "reference": {"kind": intake.reference_kind, "id": intake.reference_id},
        },
    )
    await playbooks.advance(session, incident, settings, now)


async def _attached(
    session: AsyncSession, settings: IncidentsSettings, incident: Incident, intake: Intake, now: datetime
) -> None:
    incident.report_count += 1
    incident.updated_at = now
    incident.scope = _scope(Intake(**{**intake.__dict__, "scope": incident.scope}))
    detail: dict[str, Any] = {
        "source": intake.source.value,
        "reference": {"kind": intake.reference_kind, "id": intake.reference_id},
        "reports": incident.report_count,
    }
    if intake.level is not None and intake.level < incident.level:
        detail["level"] = {"from": incident.level, "to": intake.level}
        incident.level = intake.level
        await team.plan_chain(session, incident.id, incident.level, settings, now)
        await _regulator_report_if_due(session, settings, incident, now)
    await timeline.record(
        session,
        incident.id,
        "report_attached",
        at=now,
        actor=intake.reporter,
        actor_kind=intake.reporter_kind,
        detail=detail,
    )


async def _regulator_report_if_due(
    session: AsyncSession, settings: IncidentsSettings, incident: Incident, now: datetime
) -> None:
    """An incident raised to a level the regulator hears of gets its draft report (and deadline) now."""
    hours = settings.regulator_deadline_hours.get(str(incident.level))
    if hours is None or await session.get(RegulatorReport, incident.id) is not None:
        return
    await playbooks.draft_regulator_report(session, incident, now, deadline=now + timedelta(hours=hours))


async def get(session: AsyncSession, incident_id: uuid.UUID, *, for_update: bool = False) -> Incident:
    incident = await repository.get(session, incident_id, for_update=for_update)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return incident


async def transition(
    session: AsyncSession,
    incident: Incident,
    to: IncidentState,
    *,
    reason: str,
    actor: str,
    actor_kind: str,
    now: datetime,
) -> Incident:
    current = IncidentState(incident.state)
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"an incident in {current} cannot move to {to}", state=current.value, to=to.value)
    incident.state = to.value
    setattr(incident, STAMP[to], now)
    incident.updated_at = now
    await sla.on_transition(session, incident.id, to, now)
    await timeline.record(
        session,
        incident.id,
        "transition",
        at=now,
        actor=actor,
        actor_kind=actor_kind,
        detail={"from": current.value, "to": to.value, "reason": reason},
    )
    if to is IncidentState.verified:
        await maybe_contain(session, incident, now)
    return incident


async def maybe_contain(session: AsyncSession, incident: Incident, now: datetime) -> bool:
    """A verified incident whose containment steps are all done is contained."""
    if incident.state != IncidentState.verified.value:
        return False
    steps = await playbook_repository.steps_of(session, incident.id)
    if not playbooks.containment_done(steps):
        return False
    await transition(
        session,
        incident,
        IncidentState.contained,
        reason=f"every containment step of playbook v{incident.playbook_version} succeeded or was skipped",
        actor=SYSTEM,
        actor_kind="service",
        now=now,
    )
    return True


async def update(
    session: AsyncSession,
    settings: IncidentsSettings,
    incident: Incident,
    patch: IncidentPatch,
    *,
    actor: str,
    now: datetime,
) -> Incident:
    """Refine the fixed fields; old and new values go to the timeline (nothing lost)."""
    changes: dict[str, Any] = {}
    if patch.level is not None and patch.level != incident.level:
        changes["level"] = {"from": incident.level, "to": patch.level}
        incident.level = patch.level
        await team.plan_chain(session, incident.id, incident.level, settings, now)
    if patch.cause is not None and patch.cause != incident.cause:
        changes["cause"] = {"from": incident.cause, "to": patch.cause}
        incident.cause = patch.cause
    if patch.summary is not None and patch.summary != incident.summary:
        changes["summary"] = {"from": incident.summary, "to": patch.summary}
        incident.summary = patch.summary
    if patch.scope is not None:
        scope = patch.scope.model_dump()
        if scope != incident.scope:
            changes["scope"] = {"from": incident.scope, "to": scope}
            incident.scope = scope
    if changes:
        incident.updated_at = now
        await timeline.record(
            session,
            incident.id,
            "updated",
            at=now,
            actor=actor,
            actor_kind="staff",
            detail={"changes": changes, "reason": patch.reason},
            audit_detail={"fields": sorted(changes), "level": changes.get("level")},
        )
    if "level" in changes:
        await _regulator_report_if_due(session, settings, incident, now)
    return incident


async def add_observables(
    session: AsyncSession, incident: Incident, observables: Sequence[ObservableIn], *, actor: str, now: datetime
) -> int:
    added = 0
    for observable in observables:
        if await repository.add_observable(
            session, incident.id, observable.kind.value, observable.value, actor=actor, now=now
        ):
            added += 1
    if added:
        await timeline.record(
            session,
            incident.id,
            "observables_added",
            at=now,
            actor=actor,
            actor_kind="staff",
            detail={"added": [o.model_dump(mode="json") for o in observables]},
        )
    return added


async def listing(
    session: AsyncSession,
    *,
    state: IncidentState | None,
    incident_type: IncidentType | None,
    level: int | None,
    customer_id: uuid.UUID | None,
    created_from: datetime | None,
    created_to: datetime | None,
    limit: int,
) -> Sequence[Incident]:
    return await repository.listing(
        session,
        state=state.value if state else None,
        incident_type=incident_type.value if incident_type else None,
        level=level,
        customer_id=customer_id,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
    )


async def reports_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[IncidentReport]:
    return await repository.reports(session, incident_id)


async def observables_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[Observable]:
    return await repository.observables(session, incident_id)


async def timeline_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[IncidentEvent]:
    return await repository.events(session, incident_id)


async def regulator_report(session: AsyncSession, incident_id: uuid.UUID) -> RegulatorReport | None:
    return await session.get(RegulatorReport, incident_id)


async def submit_regulator_report(
    session: AsyncSession, incident: Incident, *, actor: str, now: datetime
) -> RegulatorReport:
    report_row = await session.get(RegulatorReport, incident.id, with_for_update=True)
    if report_row is None:
        raise RecordNotFound("this incident has no regulator report")
    if report_row.submitted_at is not None:
        raise AlreadyClosed("the regulator report was already submitted")
    report_row.submitted_at = now
    report_row.submitted_by = actor
    await timeline.record(
        session,
        incident.id,
        "regulator_report_submitted",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"late": now > report_row.deadline_at, "deadline_at": report_row.deadline_at.isoformat()},
    )
    return report_row


async def incident_of_delivery(session: AsyncSession, idempotency_key: str) -> uuid.UUID | None:
    """The incident a delivery went to (for answering a repeated delivery)."""
    return await repository.incident_of_delivery(session, idempotency_key)


async def steps_changed(session: AsyncSession, settings: IncidentsSettings, incident: Incident, now: datetime) -> None:
    """After a step finished (delivered, skipped, completed): start what it unblocked, contain when done."""
    if incident.state in (IncidentState.rejected.value, IncidentState.closed.value):
        return
    await playbooks.advance(session, incident, settings, now)
    await maybe_contain(session, incident, now)
