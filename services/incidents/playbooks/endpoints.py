"""Playbook routes: the versions per type (changed by approval) and an incident's steps."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, status

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.incidents.deps import Now, Settings, wake_outbox
from services.incidents.incidents import service as incidents
from services.incidents.models import IncidentType
from services.incidents.playbooks import repository, service
from services.incidents.playbooks.schemas import CompleteBody, PlaybookChange, PlaybookOut, SkipBody, StepOut

staff = APIRouter(prefix="/staff", tags=["playbooks"])

Reader = Annotated[Principal, Depends(RequirePermission("incident:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("incident:modify"))]
Executor = Annotated[Principal, Depends(RequirePermission("incident:execute"))]


@staff.get("/playbooks", response_model=list[PlaybookOut], summary="The active playbook of every type")
async def list_playbooks(session: DBSession, principal: Reader) -> list[PlaybookOut]:
    return [PlaybookOut.of(p) for p in await repository.all_active(session)]


@staff.get("/playbooks/{incident_type}", response_model=list[PlaybookOut], summary="Every version of a type's playbook")
async def playbook_versions(incident_type: IncidentType, session: DBSession, principal: Reader) -> list[PlaybookOut]:
    """Newest first; the active one is marked."""
    return [PlaybookOut.of(p) for p in await repository.versions(session, incident_type.value)]


@staff.post(
    "/playbooks/{incident_type}/versions",
    response_model=PlaybookOut,
    status_code=status.HTTP_201_CREATED,
    summary="Make a new playbook version active (with an approval)",
)
async def change_playbook(
    incident_type: IncidentType, body: PlaybookChange, request: Request, session: DBSession, principal: Modifier
) -> PlaybookOut:
    """Maker-checker: the maker asks permissions for an `incidents.playbook_change` approval whose payload
    is `{"type": <type>, "name": <name>, "steps": [<steps as in this body, every field written out>]}`; a
    different entitled person approves it; then this call names the approval. The approval is
    executed once, for exactly that payload (its hash), or the change is refused (409
    `approval_refused`). Incidents already open keep the version they started with."""
    playbook = await service.change_playbook(
        session, request.app.state.permission_client, incident_type, body, actor=principal.subject
    )
    return PlaybookOut.of(playbook)


@staff.get("/incidents/{incident_id}/steps", response_model=list[StepOut], summary="The incident's playbook steps")
async def steps(incident_id: uuid.UUID, session: DBSession, principal: Reader) -> list[StepOut]:
    """Each step's status (pending, running, succeeded, failed, skipped), attempt, outbox keys and last error."""
    await incidents.get(session, incident_id)
    return [StepOut.of(s) for s in await repository.steps_of(session, incident_id)]


@staff.post("/incidents/{incident_id}/steps/{position}/run", response_model=StepOut, summary="Run or re-run a step")
async def run_step(
    incident_id: uuid.UUID,
    *,
    position: int,
    request: Request,
    background: BackgroundTasks,
    session: DBSession,
    settings: Settings,
    now: Now,
    principal: Executor,
) -> StepOut:
    """A pending step now, or a failed one again (a new attempt with new idempotency keys)."""
    incident = await incidents.get(session, incident_id, for_update=True)
    step = await service.run_step(session, incident, position, settings, now, actor=principal.subject)
    await incidents.steps_changed(session, settings, incident, now)
    background.add_task(wake_outbox, request)
    return StepOut.of(step)


@staff.post("/incidents/{incident_id}/steps/{position}/skip", response_model=StepOut, summary="Skip a step")
async def skip_step(
    incident_id: uuid.UUID,
    *,
    position: int,
    body: SkipBody,
    request: Request,
    background: BackgroundTasks,
    session: DBSession,
    settings: Settings,
    now: Now,
    principal: Executor,
) -> StepOut:
    """A pending or failed step is skipped with the reason (kept in the timeline and the audit chain)."""
    incident = await incidents.get(session, incident_id, for_update=True)
    step = await service.skip_step(session, incident, position, now, actor=principal.subject, reason=body.reason)
    await incidents.steps_changed(session, settings, incident, now)
    background.add_task(wake_outbox, request)
    return StepOut.of(step)


@staff.post(
    "/incidents/{incident_id}/steps/{position}/complete", response_model=StepOut, summary="Complete a manual step"
)
async def complete_step(
    incident_id: uuid.UUID,
    *,
    position: int,
    body: CompleteBody,
    request: Request,
    background: BackgroundTasks,
    session: DBSession,
    settings: Settings,
    now: Now,
    principal: Executor,
) -> StepOut:
    """A manual step (restore from backup, a call-back...) done: every checklist item confirmed."""
    incident = await incidents.get(session, incident_id, for_update=True)
    step = await service.complete_step(
        session, incident, position, now, actor=principal.subject, note=body.note, checklist_done=body.checklist_done
    )
    await incidents.steps_changed(session, settings, incident, now)
    background.add_task(wake_outbox, request)
    return StepOut.of(step)
