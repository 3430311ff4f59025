"""Playbooks: versioned step lists per incident type, and the runner that plays them on an incident.

An incident copies its type's active playbook into durable `step_run` rows when
it opens. The runner walks them in order: a step starts once every earlier
*blocking* step has succeeded or been skipped. An automatic step that acts on
another service writes its requests to the outbox in the same transaction that
marks it running, under idempotency keys naming the incident, the step and the
attempt, so a crash or a restart loses no step and repeats none; the outbox
worker delivers and retries them, and :func:`reconcile` turns the deliveries'
outcomes into the step's (succeeded, or failed with the error). A failed step
stays visible until someone re-runs it (a new attempt, new keys) or skips it
with a reason. Steps internal to this service (regulator draft, responder
assignment) finish in the transaction that starts them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from kit.outbox import MessageStatus
from kit.permissions import payload_hash
from services.incidents import timeline
from services.incidents.config import IncidentsSettings
from services.incidents.errors import InvalidPlaybook, PlaybookNotFound, StepNotActionable, StepNotFound
from services.incidents.models import (
    ClockKind,
    Incident,
    IncidentType,
    Playbook,
    RegulatorReport,
    StepMode,
    StepRun,
    StepStatus,
    TeamRole,
    audit_log,
    outbox,
)
from services.incidents.playbooks import repository
from services.incidents.playbooks.schemas import PlaybookChange, StepAction
from services.incidents.sla import service as sla
from services.incidents.team import service as team

PLAYBOOK_CHANGE_OPERATION = "incidents.playbook_change"
FINISHED = (StepStatus.succeeded.value, StepStatus.skipped.value)
SYSTEM = "incidents"

IDENTITY = "/v1/identity/internal/accounts/{account_id}"
PERMISSIONS_SUSPENSION = "/v1/permissions/internal/subjects/{staff_id}/suspension"
RISK_LIST = "/v1/risk/internal/lists/{list}/entries"


@dataclass(frozen=True, slots=True)
class Request:
    target: str
    path: str
    payload: dict[str, Any]


class ApprovalExecutor(Protocol):
    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]: ...


class NothingToDo(Exception):
    """The step does not apply to this incident (no account, no staff member, no IP...): it is skipped."""


async def instantiate(session: AsyncSession, incident: Incident) -> Playbook | None:
    """Copy the type's active playbook into the incident's step runs."""
    playbook = await repository.active_playbook(session, incident.type)
    if playbook is None:
        return None
    incident.playbook_id = playbook.id
    incident.playbook_version = playbook.version
    for position, definition in enumerate(playbook.steps, start=1):
        session.add(
            StepRun(
                incident_id=incident.id,
                position=position,
                action=definition["action"],
                mode=definition.get("mode", StepMode.automatic.value),
                blocking=bool(definition.get("blocking", False)),
                phase=definition.get("phase", "containment"),
                title=definition["title"],
                checklist=list(definition.get("checklist", [])),
                params={},
                status=StepStatus.pending.value,
                attempt=0,
                outbox_keys=[],
            )
        )
    await session.flush()
    return playbook


def _reason(incident: Incident) -> str:
    return f"incident {incident.id} ({incident.type})"[:200]


async def _requests(session: AsyncSession, incident: Incident, action: StepAction) -> list[Request]:
    """What an automatic step asks of other services, or NothingToDo when it does not apply."""
    if action in (StepAction.freeze_account, StepAction.revoke_sessions, StepAction.notify_customer):
        # identity knows the customer by its id; account_id may be the core system's account (risk's reports).
        customer = str(incident.customer_id) if incident.customer_id else incident.account_id
        if not customer:
            raise NothingToDo("no customer account in the incident's scope")
        base = IDENTITY.format(account_id=customer)
        if action is StepAction.freeze_account:
            return [Request("identity", f"{base}/freeze", {"reason": _reason(incident)})]
        if action is StepAction.revoke_sessions:
            return [Request("identity", f"{base}/revoke-sessions", {"reason": _reason(incident)})]
        message = (
            f"We are handling a security incident on your account (reference {str(incident.id)[:8]}). "
            "Your account has been secured. Contact the bank only through its official channels."
        )
        return [Request("identity", f"{base}/notifications", {"event": "incident_update", "message": message})]
    if action is StepAction.suspend_staff:
        if incident.staff_id is None:
            raise NothingToDo("no staff member in the incident's scope")
        return [
            Request(
                "permissions",
                PERMISSIONS_SUSPENSION.format(staff_id=incident.staff_id),
                {"reason": _reason(incident)},
            )
        ]
    if action in (StepAction.block_ip, StepAction.block_payee):
        kind = "ip" if action is StepAction.block_ip else "payee"
        values = await repository.observables_of(session, incident.id, kind)
        if not values:
            raise NothingToDo(f"no {kind} observables on the incident")
        return [
            Request(
                "risk",
                RISK_LIST.format(list=kind),
                {"value": value, "verdict": "block", "reason": _reason(incident), "reference": str(incident.id)},
            )
            for value in values
        ]
    raise NothingToDo(f"{action} has no automatic requests")


async def _run_internal(
    session: AsyncSession, incident: Incident, step: StepRun, settings: IncidentsSettings, now: datetime
) -> str | None:
    """Steps this service does itself; returns an error (the step fails) or None (it succeeded)."""
    action = StepAction(step.action)
    if action is StepAction.notify_regulator:
        hours = settings.regulator_deadline_hours.get(str(incident.level))
        if hours is None:
            raise NothingToDo(f"level {incident.level}: no regulator report required")
        await draft_regulator_report(session, incident, now, deadline=now + timedelta(hours=hours))
        return None
    if action is StepAction.assign_responder:
        current = await team.member(session, incident.id, TeamRole.incident_commander)
        if current is not None:
            return None
        on_call = await team.on_call(session, "primary", now)
        if on_call is None:
            return "nobody is on call (primary tier): add a shift to the rota, then re-run the step"
        await team.assign(
            session, incident.id, TeamRole.incident_commander, on_call, actor=SYSTEM, actor_kind="service", now=now
        )
        return None
    raise NothingToDo(f"{action} is not an internal step")


async def draft_regulator_report(
    session: AsyncSession, incident: Incident, now: datetime, *, deadline: datetime
) -> RegulatorReport:
    """The regulator report drafted from the incident's fixed fields, with its deadline."""
    existing = await session.get(RegulatorReport, incident.id)
    body = {
        "incident_id": str(incident.id),
        "level": incident.level,
        "type": incident.type,
        "state": incident.state,
        "occurred_at": incident.occurred_at.isoformat(),
        "discovered_at": incident.discovered_at.isoformat(),
        "summary": incident.summary,
        "cause": incident.cause,
        "scope": incident.scope,
        "source": incident.source,
        "reports": incident.report_count,
    }
    if existing is not None:
        existing.body = body
        return existing
    report = RegulatorReport(incident_id=incident.id, body=body, drafted_at=now, deadline_at=deadline)
    session.add(report)
    return report


def _key(incident: Incident, step: StepRun, index: int) -> str:
    return f"incidents:{incident.id}:step:{step.position}:attempt:{step.attempt}:{index}"


async def _start(
    session: AsyncSession,
    incident: Incident,
    step: StepRun,
    settings: IncidentsSettings,
    now: datetime,
    *,
    actor: str,
    actor_kind: str,
) -> None:
    """Start one step: enqueue its requests (outbox) or do it here; record the outcome so far."""
    step.attempt += 1
    step.started_at = now
    step.last_error = None
    action = StepAction(step.action)
    try:
        if action in (StepAction.notify_regulator, StepAction.assign_responder):
            error = await _run_internal(session, incident, step, settings, now)
            step.status = StepStatus.failed.value if error else StepStatus.succeeded.value
            step.last_error = error
            step.finished_at = None if error else now
            step.finished_by = None if error else actor
            await _recorded(session, incident, step, now, actor=actor, actor_kind=actor_kind)
            return
        requests = await _requests(session, incident, action)
    except NothingToDo as why:
        step.status = StepStatus.skipped.value
        step.note = str(why)
        step.finished_at = now
        step.finished_by = actor
        await _recorded(session, incident, step, now, actor=actor, actor_kind=actor_kind)
        return
    keys = []
    for index, request in enumerate(requests):
        keys.append(
            await outbox.enqueue(
                session,
                target=request.target,
                path=request.path,
                payload=request.payload,
                idempotency_key=_key(incident, step, index),
            )
        )
    step.outbox_keys = keys
    step.status = StepStatus.running.value
    await timeline.record(
        session,
        incident.id,
        "step_started",
        at=now,
        actor=actor,
        actor_kind=actor_kind,
        detail={"position": step.position, "action": step.action, "attempt": step.attempt, "keys": keys},
    )


async def _recorded(
    session: AsyncSession, incident: Incident, step: StepRun, now: datetime, *, actor: str, actor_kind: str
) -> None:
    # The clock's row lock before the audit chain's head lock, as everywhere (no lock-order deadlock).
    if step.action == StepAction.freeze_account and step.status in FINISHED:
        await sla.meet(session, incident.id, ClockKind.freeze, now)
    await timeline.record(
        session,
        incident.id,
        f"step_{step.status}",
        at=now,
        actor=actor,
        actor_kind=actor_kind,
        detail={
            "position": step.position,
            "action": step.action,
            "attempt": step.attempt,
            "error": step.last_error,
            "note": step.note,
        },
    )


async def advance(
    session: AsyncSession,
    incident: Incident,
    settings: IncidentsSettings,
    now: datetime,
    *,
    actor: str = SYSTEM,
    actor_kind: str = "service",
) -> int:
    """Start every automatic step whose earlier blocking steps are done; returns how many started."""
    steps = await repository.steps_of(session, incident.id, for_update=True)
    started = 0
    for step in steps:
        if step.status == StepStatus.pending.value and step.mode == StepMode.automatic.value:
            await _start(session, incident, step, settings, now, actor=actor, actor_kind=actor_kind)
            started += 1
        if step.blocking and step.status not in FINISHED:
            break
    return started


async def reconcile(session: AsyncSession, incident: Incident, now: datetime) -> int:
    """Turn delivered or dead outbox messages into the outcomes of the incident's running steps.

    Call with the incident locked (as every change of an incident is made), so a
    request and the worker never settle or start the same step at once.
    Returns how many steps settled.
    """
    steps = [
        s
        for s in await repository.steps_of(session, incident.id, for_update=True)
        if s.status == StepStatus.running.value
    ]
    if not steps:
        return 0
    outcomes = await repository.deliveries(session, [key for step in steps for key in step.outbox_keys])
    settled = 0
    for step in steps:
        states = [outcomes.get(key, ("missing", "the message is gone")) for key in step.outbox_keys]
        pending_or_done = (MessageStatus.delivered, MessageStatus.pending)
        dead = [error or "undeliverable" for status, error in states if status not in pending_or_done]
        retrying = [error for status, error in states if status == MessageStatus.pending and error]
        if dead:
            step.status = StepStatus.failed.value
            step.last_error = "; ".join(dead)[:2000]
        elif all(status == MessageStatus.delivered for status, _ in states):
            step.status = StepStatus.succeeded.value
            step.finished_at = now
            step.finished_by = SYSTEM
            step.last_error = None
        else:
            if retrying:
                step.last_error = f"retrying: {retrying[0]}"[:2000]
            continue
        await _recorded(session, incident, step, now, actor=SYSTEM, actor_kind="service")
        settled += 1
    return settled


async def get_step(session: AsyncSession, incident_id: uuid.UUID, position: int) -> StepRun:
    step = await repository.step(session, incident_id, position)
    if step is None:
        raise StepNotFound(f"no step {position} on incident {incident_id}")
    return step


async def run_step(
    session: AsyncSession, incident: Incident, position: int, settings: IncidentsSettings, now: datetime, *, actor: str
) -> StepRun:
    """Run (or re-run) a pending or failed step now: a new attempt with new idempotency keys."""
    step = await get_step(session, incident.id, position)
    if step.status not in (StepStatus.pending.value, StepStatus.failed.value):
        raise StepNotActionable(f"a {step.status} step cannot be run", step_status=step.status)
    if StepAction(step.action) in (StepAction.restore_backup, StepAction.task):
        raise StepNotActionable("a manual step is completed with its checklist, not run")
    await _start(session, incident, step, settings, now, actor=actor, actor_kind="staff")
    return step


async def skip_step(
    session: AsyncSession, incident: Incident, position: int, now: datetime, *, actor: str, reason: str
) -> StepRun:
    step = await get_step(session, incident.id, position)
    if step.status not in (StepStatus.pending.value, StepStatus.failed.value):
        raise StepNotActionable(f"a {step.status} step cannot be skipped", step_status=step.status)
    step.status = StepStatus.skipped.value
    step.note = reason
    step.finished_at = now
    step.finished_by = actor
    await _recorded(session, incident, step, now, actor=actor, actor_kind="staff")
    return step


async def complete_step(
    session: AsyncSession,
    incident: Incident,
    position: int,
    now: datetime,
    *,
    actor: str,
    note: str,
    checklist_done: Sequence[str],
) -> StepRun:
    """A person finished a manual step: every checklist item must be confirmed."""
    step = await get_step(session, incident.id, position)
    if step.mode != StepMode.manual.value:
        raise StepNotActionable("only manual steps are completed by hand")
    if step.status not in (StepStatus.pending.value, StepStatus.failed.value):
        raise StepNotActionable(f"a {step.status} step cannot be completed", step_status=step.status)
    missing = [item for item in step.checklist if item not in set(checklist_done)]
    if missing:
        raise StepNotActionable("every checklist item must be confirmed", missing=missing)
    step.attempt += 1
    step.status = StepStatus.succeeded.value
    step.note = note
    step.started_at = step.started_at or now
    step.finished_at = now
    step.finished_by = actor
    await _recorded(session, incident, step, now, actor=actor, actor_kind="staff")
    return step


def containment_done(steps: Sequence[StepRun]) -> bool:
    containment = [s for s in steps if s.phase == "containment"]
    return bool(containment) and all(s.status in FINISHED for s in containment)


def change_payload(incident_type: IncidentType, body: PlaybookChange) -> dict[str, Any]:
    """What the approval of a playbook change is bound to (its hash is checked by permissions)."""
    return {
        "type": incident_type.value,
        "name": body.name,
        "steps": [step.model_dump(mode="json") for step in body.steps],
    }


async def change_playbook(
    session: AsyncSession,
    approvals: ApprovalExecutor,
    incident_type: IncidentType,
    body: PlaybookChange,
    *,
    actor: str,
) -> Playbook:
    """A new active version, only with an approved `incidents.playbook_change` for exactly this payload."""
    payload = change_payload(incident_type, body)
    if not any(step["mode"] == StepMode.automatic.value for step in payload["steps"]) and not any(
        step["checklist"] for step in payload["steps"]
    ):
        raise InvalidPlaybook("a playbook needs an automatic step or a checklist to follow")
    result = await approvals.execute_approval(str(body.approval_id), PLAYBOOK_CHANGE_OPERATION, payload)
    current = await repository.active_playbook(session, incident_type.value)
    version = await repository.next_version(session, incident_type.value)
    if current is not None:
        current.active = False
        await session.flush()
    playbook = Playbook(
        type=incident_type.value,
        version=version,
        name=body.name,
        steps=payload["steps"],
        active=True,
        created_by=actor,
        approval_id=str(body.approval_id),
    )
    session.add(playbook)
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        action="playbook.changed",
        target=incident_type.value,
        detail={
            "version": version,
            "approval_id": str(body.approval_id),
            "payload_hash": payload_hash(payload),
            "approved_by": result.get("approved_by"),
        },
    )
    return playbook


async def get_active(session: AsyncSession, incident_type: IncidentType) -> Playbook:
    playbook = await repository.active_playbook(session, incident_type.value)
    if playbook is None:
        raise PlaybookNotFound(f"no active playbook for {incident_type}")
    return playbook
