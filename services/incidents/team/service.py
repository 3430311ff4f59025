"""Response teams (roles, assignment, hand-over), the on-call rota, and reporting up the chain (M6.2-6.3)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import timeline
from services.incidents.config import IncidentsSettings
from services.incidents.errors import AlreadyClosed, RecordNotFound
from services.incidents.models import Assignment, ChainReport, Escalation, OnCallShift, TeamRole, outbox
from services.incidents.team import repository


async def on_call(session: AsyncSession, tier: str, at: datetime) -> str | None:
    """Who is on call in a tier at a time (None when the rota has a gap)."""
    shift = await repository.shift_at(session, tier, at)
    return shift.staff_id if shift is not None else None


async def member(session: AsyncSession, incident_id: uuid.UUID, role: TeamRole) -> str | None:
    current = await repository.active_assignment(session, incident_id, role.value)
    return current.staff_id if current is not None else None


async def assign(
    session: AsyncSession,
    incident_id: uuid.UUID,
    role: TeamRole,
    staff_id: str,
    *,
    actor: str,
    actor_kind: str = "staff",
    now: datetime,
    note: str | None = None,
) -> Assignment:
    """Put someone in a role; whoever held it is released with the hand-over note."""
    current = await repository.active_assignment(session, incident_id, role.value)
    if current is not None:
        if current.staff_id == staff_id:
            return current
        current.released_at = now
        current.handover_note = note
        await session.flush()
    assignment = Assignment(
        incident_id=incident_id, role=role.value, staff_id=staff_id, assigned_at=now, assigned_by=actor
    )
    session.add(assignment)
    await session.flush()
    await timeline.record(
        session,
        incident_id,
        "assigned",
        at=now,
        actor=actor,
        actor_kind=actor_kind,
        detail={
            "role": role.value,
            "staff_id": staff_id,
            "previous": current.staff_id if current is not None else None,
            "handover_note": note,
        },
    )
    return assignment


async def team_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[Assignment]:
    return await repository.assignments(session, incident_id)


async def add_shift(
    session: AsyncSession, *, tier: str, staff_id: str, starts_at: datetime, ends_at: datetime, actor: str
) -> OnCallShift:
    shift = OnCallShift(tier=tier, staff_id=staff_id, starts_at=starts_at, ends_at=ends_at, created_by=actor)
    session.add(shift)
    await session.flush()
    return shift


async def handover(
    session: AsyncSession, *, tier: str, to_staff: str, note: str, actor: str, now: datetime
) -> OnCallShift:
    """The person on call hands the rest of their shift over to someone else, with a note."""
    current = await repository.shift_at(session, tier, now)
    if current is None:
        raise RecordNotFound(f"nobody is on call in the {tier} tier now")
    successor = OnCallShift(
        tier=tier, staff_id=to_staff, starts_at=now, ends_at=current.ends_at, handover_note=note, created_by=actor
    )
    current.ends_at = now
    session.add(successor)
    await session.flush()
    return successor


async def rota(session: AsyncSession, start: datetime, end: datetime) -> Sequence[OnCallShift]:
    return await repository.shifts(session, start, end)


async def plan_chain(
    session: AsyncSession, incident_id: uuid.UUID, level: int, settings: IncidentsSettings, now: datetime
) -> None:
    """Who must be told of an incident of this level and by when (idempotent: a level change adds what is new)."""
    existing = {r.audience for r in await repository.chain_reports(session, incident_id)}
    for step in settings.reporting_chain.get(str(level), []):
        if step.audience in existing:
            continue
        session.add(
            ChainReport(
                incident_id=incident_id, audience=step.audience, due_at=now + timedelta(minutes=step.within_minutes)
            )
        )
    await session.flush()


async def chain_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[ChainReport]:
    return await repository.chain_reports(session, incident_id)


async def mark_reported(
    session: AsyncSession, incident_id: uuid.UUID, audience: str, *, actor: str, now: datetime, channel: str
) -> ChainReport:
    report = await repository.chain_report(session, incident_id, audience)
    if report is None:
        raise RecordNotFound(f"{audience} is not on this incident's reporting chain")
    if report.reported_at is not None:
        raise AlreadyClosed(f"{audience} was already told")
    report.reported_at = now
    report.reported_by = actor
    await timeline.record(
        session,
        incident_id,
        "reported_up",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"audience": audience, "channel": channel, "late": now > report.due_at},
    )
    return report


async def escalate(
    session: AsyncSession,
    *,
    incident_id: uuid.UUID,
    kind: str,
    subject_ref: str,
    tier: str,
    message: str,
    now: datetime,
    due_at: datetime | None = None,
) -> Escalation:
    """Record an escalation to whoever is on call in `tier`; with nobody on call it waits in the tier's queue."""
    recipient = await on_call(session, tier, now)
    escalation = Escalation(
        incident_id=incident_id,
        kind=kind,
        subject_ref=subject_ref,
        tier=tier,
        recipient=recipient,
        recipient_role=None if recipient else tier,
        message=message,
        due_at=due_at,
        created_at=now,
    )
    session.add(escalation)
    await session.flush()
    if recipient is not None:
        await notify_staff(session, recipient, escalation, incident_id)
    await timeline.record(
        session,
        incident_id,
        "escalated",
        at=now,
        actor="incidents",
        actor_kind="service",
        detail={"kind": kind, "ref": subject_ref, "tier": tier, "recipient": recipient},
    )
    return escalation


async def notify_staff(session: AsyncSession, staff_id: str, escalation: Escalation, incident_id: uuid.UUID) -> str:
    """Tell a staff member of an escalation through identity's notifications (their verified channels),
    through the outbox; the escalation also waits in their queue. The text names only the incident's
    short reference and what is late."""
    return await outbox.enqueue(
        session,
        target="identity",
        path=f"/v1/identity/internal/accounts/{staff_id}/notifications",
        payload={
            "event": "security_alert",
            "message": (
                f"Incident {str(incident_id)[:8]}: {escalation.kind.replace('_', ' ')} ({escalation.subject_ref})."
            ),
        },
        idempotency_key=f"incidents:escalation:{escalation.id}",
    )


async def chain_overdue(session: AsyncSession, now: datetime) -> int:
    """Reports up the chain not made in time escalate to the manager."""
    overdue = await repository.overdue_chain_reports(session, now)
    for report in overdue:
        report.overdue_at = now
        await escalate(
            session,
            incident_id=report.incident_id,
            kind="chain_report_overdue",
            subject_ref=report.audience,
            tier="manager",
            message=f"{report.audience} was not told of the incident by {report.due_at.isoformat()}",
            now=now,
            due_at=report.due_at,
        )
    return len(overdue)
