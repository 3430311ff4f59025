"""After the incident (M6.4-6.5): the post-mortem, corrective actions tracked to closure, accountability.

The post-mortem's timeline is the incident's recorded events (nothing is
retyped). Corrective actions carry an owner and a due date; an open one past
its date escalates once to its owner and to the manager on call.
Accountability records technical, management or personal responsibility with
the decision and who took it, in the audit chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents import timeline
from services.incidents.errors import AlreadyClosed, RecordNotFound
from services.incidents.models import Accountability, CorrectiveAction, Escalation, PostMortem
from services.incidents.postmortems import repository
from services.incidents.postmortems.schemas import AccountabilityBody, ActionBody, PostMortemBody
from services.incidents.team import service as team


async def get(session: AsyncSession, incident_id: uuid.UUID) -> PostMortem | None:
    return await repository.postmortem(session, incident_id)


async def write(
    session: AsyncSession, incident_id: uuid.UUID, body: PostMortemBody, *, actor: str, now: datetime
) -> PostMortem:
    pm = await repository.postmortem(session, incident_id, for_update=True)
    if pm is None:
        pm = PostMortem(incident_id=incident_id, author=actor, created_at=now, updated_at=now, **body.model_dump())
        session.add(pm)
    else:
        for name, value in body.model_dump().items():
            setattr(pm, name, value)
        pm.updated_at = now
    await session.flush()
    await timeline.record(
        session,
        incident_id,
        "postmortem_written",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"fields": [k for k, v in body.model_dump().items() if v]},
    )
    return pm


async def add_action(
    session: AsyncSession, incident_id: uuid.UUID, body: ActionBody, *, actor: str, now: datetime
) -> CorrectiveAction:
    action = CorrectiveAction(
        incident_id=incident_id,
        title=body.title,
        owner=body.owner,
        due_at=body.due_at,
        created_by=actor,
        created_at=now,
    )
    session.add(action)
    await session.flush()
    await timeline.record(
        session,
        incident_id,
        "corrective_action_added",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"action_id": str(action.id), "owner": body.owner, "due_at": body.due_at.isoformat()},
    )
    return action


async def close_action(
    session: AsyncSession, action_id: uuid.UUID, *, resolution: str, actor: str, now: datetime
) -> CorrectiveAction:
    action = await repository.action(session, action_id)
    if action is None:
        raise RecordNotFound(f"no corrective action {action_id}")
    if action.closed_at is not None:
        raise AlreadyClosed("the corrective action is already closed")
    action.closed_at = now
    action.closed_by = actor
    action.resolution = resolution
    await timeline.record(
        session,
        action.incident_id,
        "corrective_action_closed",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"action_id": str(action.id), "late": now > action.due_at},
    )
    return action


async def actions_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[CorrectiveAction]:
    return await repository.actions_of(session, incident_id)


async def open_actions(
    session: AsyncSession, *, owner: str | None, overdue_at: datetime | None, limit: int
) -> Sequence[CorrectiveAction]:
    return await repository.open_actions(session, owner=owner, overdue_at=overdue_at, limit=limit)


async def escalate_overdue(session: AsyncSession, now: datetime) -> int:
    """Open actions past their due date escalate once: to the owner and to the manager on call."""
    overdue = await repository.overdue_unescalated(session, now)
    for action in overdue:
        action.escalated_at = now
        to_owner = Escalation(
            incident_id=action.incident_id,
            kind="corrective_action_overdue",
            subject_ref=str(action.id),
            tier="owner",
            recipient=action.owner,
            message=f"corrective action '{action.title}' was due {action.due_at.isoformat()}",
            due_at=action.due_at,
            created_at=now,
        )
        session.add(to_owner)
        await session.flush()
        await team.notify_staff(session, action.owner, to_owner, action.incident_id)
        await team.escalate(
            session,
            incident_id=action.incident_id,
            kind="corrective_action_overdue",
            subject_ref=str(action.id),
            tier="manager",
            message=f"corrective action '{action.title}' owned by {action.owner} is overdue",
            now=now,
            due_at=action.due_at,
        )
    return len(overdue)


async def record_accountability(
    session: AsyncSession, incident_id: uuid.UUID, body: AccountabilityBody, *, actor: str, now: datetime
) -> Accountability:
    record = Accountability(
        incident_id=incident_id,
        kind=body.kind.value,
        responsible=body.responsible,
        finding=body.finding,
        decision=body.decision,
        decided_by=actor,
        decided_at=now,
    )
    session.add(record)
    await session.flush()
    await timeline.record(
        session,
        incident_id,
        "accountability_recorded",
        at=now,
        actor=actor,
        actor_kind="staff",
        detail={"record_id": str(record.id), "kind": body.kind.value, "responsible": body.responsible},
    )
    return record


async def accountability_of(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[Accountability]:
    return await repository.accountability_of(session, incident_id)
