"""Staff subjects: account status from identity, suspensions, training records."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.permissions.approvals import service as approvals
from services.permissions.approvals.service import now_utc
from services.permissions.checks.store import ChangeKind, PolicyStore, lock_policy, record_change
from services.permissions.config import PermissionsSettings
from services.permissions.errors import InvalidPayload, InvalidTraining, NoActiveSuspension, SelfService
from services.permissions.grants.service import revoke_all
from services.permissions.models import (
    Approval,
    SubjectState,
    SubjectStatus,
    Suspension,
    TrainingRecord,
    audit_log,
)
from services.permissions.subjects import repository

LIFT_OPERATION = "subject.lift_suspension"


async def set_status(
    session: AsyncSession,
    store: PolicyStore,
    subject: str,
    *,
    status: SubjectStatus,
    reason: str,
    caller: str,
) -> SubjectState:
    """Record identity's account status; a closed account loses every grant."""
    # Serialises concurrent reports (the row may not exist yet, so a row lock is not enough).
    await lock_policy(session)
    state = await repository.state_for_update(session, subject)
    previous = state.status if state is not None else SubjectStatus.active
    if state is None:
        state = SubjectState(subject=subject, status=status, reason=reason, updated_by=caller)
        session.add(state)
    else:
        state.status, state.reason, state.updated_by, state.updated_at = status, reason, caller, now_utc()
    await session.flush()
    revoked = 0
    if status == SubjectStatus.closed:
        revoked = await revoke_all(session, store, subject, actor=caller, reason="account closed")
    await record_change(session, ChangeKind.subject, subject, store)
    await audit_log.append(
        session,
        actor=caller,
        actor_kind="service",
        action="subject.status_changed",
        target=subject,
        detail={"from": previous, "to": status.value, "grants_revoked": revoked},
    )
    return state


async def suspend(
    session: AsyncSession, store: PolicyStore, subject: str, *, reason: str, source: str, actor_kind: str
) -> tuple[Suspension, bool]:
    """Suspend the subject's high-risk permissions; a second report joins the active suspension."""
    await lock_policy(session)  # two concurrent reports: the second sees the first and joins it
    existing = await repository.active_suspension(session, subject)
    if existing is not None:
        return existing, False
    suspension = Suspension(id=uuid.uuid4(), subject=subject, reason=reason, source=source, created_at=now_utc())
    session.add(suspension)
    await session.flush()
    await record_change(session, ChangeKind.subject, subject, store)
    await audit_log.append(
        session,
        actor=source,
        actor_kind=actor_kind,
        action="subject.suspended",
        target=subject,
        detail={"suspension_id": str(suspension.id)},
    )
    return suspension, True


async def request_lift(
    session: AsyncSession, settings: PermissionsSettings, subject: str, *, requester: str, comment: str
) -> Approval:
    suspension = await repository.active_suspension(session, subject)
    if suspension is None:
        raise NoActiveSuspension(f"{subject} has no active suspension")
    return await approvals.create(
        session,
        settings,
        operation=LIFT_OPERATION,
        payload={"subject": subject, "suspension_id": str(suspension.id)},
        requested_by=requester,
        comment=comment,
        excluded_approvers=[subject],
    )


def lift_applier(store: PolicyStore) -> approvals.InternalExecutor:
    async def apply(session: AsyncSession, approval: Approval, approver: str) -> None:
        try:
            subject = str(approval.payload["subject"])
            suspension_id = uuid.UUID(str(approval.payload["suspension_id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidPayload("the lift approval's payload is malformed") from exc
        suspension = await repository.suspension_for_update(session, suspension_id)
        if suspension is None or suspension.subject != subject or suspension.lifted_at is not None:
            raise NoActiveSuspension("the suspension was already lifted or does not exist")
        suspension.lifted_at = now_utc()
        suspension.lifted_by = approver
        suspension.lift_approval_id = approval.id
        await session.flush()
        await record_change(session, ChangeKind.subject, subject, store)
        await audit_log.append(
            session,
            actor=approver,
            action="subject.suspension_lifted",
            target=subject,
            detail={"suspension_id": str(suspension.id), "approval_id": str(approval.id)},
        )

    return apply


async def record_training(
    session: AsyncSession,
    settings: PermissionsSettings,
    *,
    subject: str,
    course: str,
    completed_at: datetime,
    expires_at: datetime | None,
    score: int | None,
    recorder: str,
) -> TrainingRecord:
    if recorder == subject:
        raise SelfService("a training completion is recorded by someone else than the trainee")
    now = now_utc()
    if completed_at.tzinfo is None or (expires_at is not None and expires_at.tzinfo is None):
        raise InvalidTraining("times must carry a time zone")
    if completed_at > now + timedelta(minutes=5):
        raise InvalidTraining("completed_at is in the future")
    expiry = expires_at or completed_at + timedelta(days=settings.training_validity_days)
    if expiry <= completed_at:
        raise InvalidTraining("expires_at must come after completed_at")
    record = TrainingRecord(
        id=uuid.uuid4(),
        subject=subject,
        course=course,
        completed_at=completed_at,
        expires_at=expiry,
        score=score,
        recorded_by=recorder,
    )
    session.add(record)
    await session.flush()
    await audit_log.append(
        session,
        actor=recorder,
        action="training.recorded",
        target=subject,
        detail={"training_id": str(record.id), "course": course, "expires_at": expiry.isoformat()},
    )
    return record
