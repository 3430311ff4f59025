"""Staff subjects: status from identity, suspensions from risk and incidents, training records."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, status

from kit.auth import Principal, ServiceCaller
from kit.db import DBSession
from kit.errors import Forbidden
from kit.permissions import RequirePermission
from services.permissions.approvals.schemas import ApprovalOut
from services.permissions.checks.store import Store
from services.permissions.deps import Settings, StepUp
from services.permissions.grants.schemas import GrantOut
from services.permissions.grants.service import live_grants
from services.permissions.models import SubjectState, inbox
from services.permissions.subjects import repository, service
from services.permissions.subjects.schemas import (
    LiftBody,
    StatusBody,
    StatusOut,
    SubjectOut,
    SuspensionBody,
    SuspensionOut,
    TrainingBody,
    TrainingOut,
)

internal = APIRouter(prefix="/internal/subjects", tags=["subjects"])
staff = APIRouter(prefix="/staff", tags=["subjects"])

OptionalIdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=200)]


def _allowed(caller: Principal, allowed: tuple[str, ...], what: str) -> None:
    if caller.subject not in allowed:
        raise Forbidden(f"{caller.subject} may not report {what}")


@internal.post("/{subject}/status", response_model=StatusOut, summary="Account status of a staff member")
async def report_status(
    subject: uuid.UUID,
    *,
    body: StatusBody,
    session: DBSession,
    settings: Settings,
    store: Store,
    caller: ServiceCaller,
    idempotency_key: OptionalIdempotencyKey = None,
) -> StatusOut:
    """identity (and incidents) tell permissions when a staff account is frozen, unfrozen or closed.
    Frozen staff are denied every high-risk permission; closed staff lose every grant. Idempotent:
    a redelivery with the same `Idempotency-Key` is acknowledged and not applied twice."""
    _allowed(caller, settings.status_reporters, "account status")
    if idempotency_key is not None and not await inbox.first_delivery(session, idempotency_key):
        return StatusOut(subject=str(subject), status=body.status.value, applied=False)
    state = await service.set_status(
        session, store, str(subject), status=body.status, reason=body.reason, caller=caller.subject
    )
    return StatusOut(subject=state.subject, status=state.status, applied=True)


@internal.post("/{subject}/suspension", response_model=SuspensionOut, summary="Suspend high-risk permissions")
async def report_suspension(
    subject: uuid.UUID,
    *,
    body: SuspensionBody,
    session: DBSession,
    settings: Settings,
    store: Store,
    caller: ServiceCaller,
    idempotency_key: OptionalIdempotencyKey = None,
) -> SuspensionOut:
    """risk (behaviour analytics) or incidents suspend a staff member's high-risk permissions pending
    review; effective in this process at once. A report while a suspension is active joins it
    (`created: false`). Lifting needs an approval."""
    _allowed(caller, settings.suspension_reporters, "suspensions")
    if idempotency_key is not None and not await inbox.first_delivery(session, idempotency_key):
        existing = await repository.active_suspension(session, str(subject))
        if existing is not None:
            return SuspensionOut.of(existing, created=False)
    suspension, created = await service.suspend(
        session, store, str(subject), reason=body.reason, source=caller.subject, actor_kind="service"
    )
    return SuspensionOut.of(suspension, created)


@staff.post(
    "/subjects/{subject}/suspension", response_model=SuspensionOut, summary="Suspend (by staff)", dependencies=[StepUp]
)
async def suspend(
    subject: uuid.UUID,
    body: SuspensionBody,
    session: DBSession,
    store: Store,
    principal: Annotated[Principal, Depends(RequirePermission("suspension:create"))],
) -> SuspensionOut:
    """A security officer suspends a colleague's high-risk permissions pending review."""
    suspension, created = await service.suspend(
        session, store, str(subject), reason=body.reason, source=principal.subject, actor_kind="staff"
    )
    return SuspensionOut.of(suspension, created)


@staff.post(
    "/subjects/{subject}/suspension/lift-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalOut,
    summary="Ask for a suspension to be lifted",
    dependencies=[StepUp],
)
async def request_lift(
    subject: uuid.UUID,
    body: LiftBody,
    session: DBSession,
    settings: Settings,
    principal: Annotated[Principal, Depends(RequirePermission("approval:create"))],
) -> ApprovalOut:
    """Creates an approval of `subject.lift_suspension`; a holder of `suspension:lift` other than the
    requester and the suspended person approves it, and the suspension is lifted in that step."""
    approval = await service.request_lift(
        session, settings, str(subject), requester=principal.subject, comment=body.comment
    )
    return ApprovalOut.of(approval, approval.state)


@staff.get("/subjects/{subject}", response_model=SubjectOut, summary="A staff member's access at a glance")
async def subject_view(
    subject: uuid.UUID,
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("permission:read"))],
) -> SubjectOut:
    """Status, active suspension, live grants and training records."""
    sid = str(subject)
    state = await session.get(SubjectState, sid)
    suspension = await repository.active_suspension(session, sid)
    return SubjectOut(
        subject=sid,
        status=state.status if state else "active",
        suspension=SuspensionOut.of(suspension) if suspension else None,
        grants=[GrantOut.of(g, role) for g, role in await live_grants(session, sid)],
        trainings=[TrainingOut.of(t) for t in await repository.trainings_of(session, sid)],
    )


@staff.post(
    "/trainings",
    status_code=status.HTTP_201_CREATED,
    response_model=TrainingOut,
    summary="Record a training",
    dependencies=[StepUp],
)
async def record_training(
    body: TrainingBody,
    session: DBSession,
    settings: Settings,
    principal: Annotated[Principal, Depends(RequirePermission("training:record"))],
) -> TrainingOut:
    """A completed security training (M8) with its expiry; high-risk roles need a current one of the
    configured course. Nobody records their own."""
    record = await service.record_training(
        session,
        settings,
        subject=str(body.subject),
        course=body.course or settings.training_course,
        completed_at=body.completed_at,
        expires_at=body.expires_at,
        score=body.score,
        recorder=principal.subject,
    )
    return TrainingOut.of(record)
