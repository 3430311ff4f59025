"""Post-mortem routes: the review with its timeline, corrective actions, accountability (M6.4-6.5)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.incidents.deps import Now
from services.incidents.incidents import service as incidents
from services.incidents.incidents.schemas import EventOut
from services.incidents.postmortems import service
from services.incidents.postmortems.schemas import (
    AccountabilityBody,
    AccountabilityOut,
    ActionBody,
    ActionOut,
    CloseBody,
    PostMortemBody,
    PostMortemOut,
)

staff = APIRouter(prefix="/staff", tags=["postmortems"])

Reader = Annotated[Principal, Depends(RequirePermission("incident:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("incident:modify"))]


async def _full(session: DBSession, incident_id: uuid.UUID, now: Now) -> PostMortemOut:
    await session.flush()  # what this request wrote is part of the answer
    return PostMortemOut.of(
        incident_id,
        await service.get(session, incident_id),
        [EventOut.of(e) for e in await incidents.timeline_of(session, incident_id)],
        [ActionOut.of(a, now) for a in await service.actions_of(session, incident_id)],
        [AccountabilityOut.of(a) for a in await service.accountability_of(session, incident_id)],
    )


@staff.get("/incidents/{incident_id}/postmortem", response_model=PostMortemOut, summary="The post-mortem")
async def get_postmortem(incident_id: uuid.UUID, session: DBSession, now: Now, principal: Reader) -> PostMortemOut:
    """Root cause, impact, what went well and badly, lessons; the timeline built from the incident's
    recorded events; corrective actions and accountability records."""
    await incidents.get(session, incident_id)
    return await _full(session, incident_id, now)


@staff.put("/incidents/{incident_id}/postmortem", response_model=PostMortemOut, summary="Write the post-mortem")
async def put_postmortem(
    incident_id: uuid.UUID, body: PostMortemBody, session: DBSession, now: Now, principal: Modifier
) -> PostMortemOut:
    await incidents.get(session, incident_id, for_update=True)
    await service.write(session, incident_id, body, actor=principal.subject, now=now)
    return await _full(session, incident_id, now)


@staff.post(
    "/incidents/{incident_id}/corrective-actions",
    response_model=ActionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a corrective action",
)
async def add_action(
    incident_id: uuid.UUID, body: ActionBody, session: DBSession, now: Now, principal: Modifier
) -> ActionOut:
    """With an owner and a due date; once overdue it escalates to the owner and the manager on call."""
    await incidents.get(session, incident_id, for_update=True)
    return ActionOut.of(await service.add_action(session, incident_id, body, actor=principal.subject, now=now), now)


@staff.get("/corrective-actions", response_model=list[ActionOut], summary="Open corrective actions")
async def open_actions(
    session: DBSession,
    *,
    now: Now,
    principal: Reader,
    owner: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ActionOut]:
    """Tracked to closure: the open ones (of an owner; only overdue ones with `overdue=true`)."""
    rows = await service.open_actions(session, owner=owner, overdue_at=now if overdue else None, limit=limit)
    return [ActionOut.of(a, now) for a in rows]


@staff.post("/corrective-actions/{action_id}/close", response_model=ActionOut, summary="Close a corrective action")
async def close_action(
    action_id: uuid.UUID, body: CloseBody, session: DBSession, now: Now, principal: Modifier
) -> ActionOut:
    action = await service.close_action(
        session, action_id, resolution=body.resolution, actor=principal.subject, now=now
    )
    return ActionOut.of(action, now)


@staff.post(
    "/incidents/{incident_id}/accountability",
    response_model=AccountabilityOut,
    status_code=status.HTTP_201_CREATED,
    summary="Record responsibility (technical, management, personal)",
)
async def record_accountability(
    incident_id: uuid.UUID, body: AccountabilityBody, session: DBSession, now: Now, principal: Modifier
) -> AccountabilityOut:
    """The finding and the decision, with who took it (the caller), in the audit chain (M6.5)."""
    await incidents.get(session, incident_id, for_update=True)
    record = await service.record_accountability(session, incident_id, body, actor=principal.subject, now=now)
    return AccountabilityOut.of(record)
