"""Maker-checker approvals: create, decide, execute exactly once.

State machine::

    pending --(enough approvals)--> approved --(execute, once)--> executed
       |  \\--(a rejection)--> rejected
       \\--(expires_at passes, pending or approved)--> expired

The payload is stored and its canonical SHA-256 (``kit.permissions.payload_hash``)
is fixed at creation: an executor must present the same hash, so nothing
approved can change before it runs. Execution is one conditional UPDATE
(``state = 'approved' AND not expired AND hash matches``): under any
concurrency exactly one caller wins it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.permissions import payload_hash
from services.permissions.checks.store import PolicyStore, lock_policy
from services.permissions.config import ApprovalPolicy, PermissionsSettings
from services.permissions.errors import (
    AlreadyDecided,
    ApprovalAlreadyExecuted,
    ApprovalExpired,
    ApprovalNotApproved,
    ApprovalNotFound,
    ApprovalNotPending,
    ApprovalPayloadMismatch,
    ApproverExcluded,
    ExecutorNotAllowed,
    NotEntitled,
    SelfApproval,
    UnknownOperation,
)
from services.permissions.models import (
    Approval,
    ApprovalComment,
    ApprovalDecision,
    ApprovalState,
    Decision,
    audit_log,
)

#: Runs an approved operation that permissions applies itself (role grants,
#: lifting suspensions); gets the approval and the subject whose approval completed it.
InternalExecutor = Callable[[AsyncSession, Approval, str], Awaitable[None]]


_DECISION_ACTIONS = {Decision.approve: "approval.approved", Decision.reject: "approval.rejected"}


def now_utc() -> datetime:
    return datetime.now(UTC)


def effective_state(approval: Approval, now: datetime | None = None) -> str:
    """The state as of now: a pending or approved approval past its expiry is expired."""
    moment = now or now_utc()
    if approval.state in (ApprovalState.pending, ApprovalState.approved) and approval.expires_at <= moment:
        return ApprovalState.expired
    return approval.state


def policy_for(settings: PermissionsSettings, operation: str) -> ApprovalPolicy:
    policy = settings.approval_policies.get(operation)
    if policy is None:
        raise UnknownOperation(f"no approval policy for operation {operation!r}", operation=operation)
    return policy


def requirement(settings: PermissionsSettings, operation: str, payload: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether ``operation`` with ``payload`` needs an approval, and why."""
    policy = settings.approval_policies.get(operation)
    if policy is None:
        return False, f"no approval policy for {operation}"
    if policy.threshold_field is not None and policy.threshold is not None:
        value = payload.get(policy.threshold_field)
        if isinstance(value, bool) or not isinstance(value, int):
            return True, f"{policy.threshold_field} missing or not an integer: approval required (fail closed)"
        if value < policy.threshold:
            return False, f"{policy.threshold_field} {value} is below the threshold {policy.threshold}"
        return True, f"{policy.threshold_field} {value} reaches the threshold {policy.threshold}"
    return True, f"{operation} always needs {policy.required_approvals} approval(s)"


def payload_subjects(policy: ApprovalPolicy, payload: Any) -> set[str]:
    """Whom the payload's subject fields name (a string, or a list of strings, per field)."""
    if not isinstance(payload, Mapping):
        return set()
    found: set[str] = set()
    for name in policy.subject_fields:
        value = payload.get(name)
        values = value if isinstance(value, list) else [value]
        found.update(str(v) for v in values if isinstance(v, str | int) and not isinstance(v, bool))
    return found


async def create(
    session: AsyncSession,
    settings: PermissionsSettings,
    *,
    operation: str,
    payload: Any,
    requested_by: str,
    comment: str = "",
    excluded_approvers: Sequence[str] = (),
) -> Approval:
    policy = policy_for(settings, operation)
    now = now_utc()
    approval = Approval(
        id=uuid.uuid4(),
        operation=operation,
        payload=payload,
        payload_hash=payload_hash(payload),
        requested_by=requested_by,
        required_approvals=policy.required_approvals,
        approver_permission=policy.approver_permission,
        approver_role=policy.approver_role,
        # The people the operation is about never check it: the ones the caller names and the ones
        # the policy's subject fields name in the payload (a reader, an account, a subject).
        excluded_approvers=sorted((set(excluded_approvers) | payload_subjects(policy, payload)) - {requested_by}),
        state=ApprovalState.pending,
        created_at=now,
        expires_at=now + timedelta(seconds=policy.ttl_seconds),
    )
    session.add(approval)
    await session.flush()
    if comment:
        session.add(ApprovalComment(approval_id=approval.id, author=requested_by, body=comment))
    await audit_log.append(
        session,
        actor=requested_by,
        action="approval.created",
        target=str(approval.id),
        detail={"operation": operation, "payload_hash": approval.payload_hash},
    )
    return approval


async def get(session: AsyncSession, approval_id: uuid.UUID, *, for_update: bool = False) -> Approval:
    query = select(Approval).where(Approval.id == approval_id)
    if for_update:
        query = query.with_for_update()
    approval = (await session.execute(query)).scalar_one_or_none()
    if approval is None:
        raise ApprovalNotFound(f"approval {approval_id} does not exist")
    return approval


async def decisions_of(session: AsyncSession, approval_id: uuid.UUID) -> list[ApprovalDecision]:
    query = select(ApprovalDecision).where(ApprovalDecision.approval_id == approval_id)
    return list((await session.execute(query.order_by(ApprovalDecision.created_at))).scalars())


async def comments_of(session: AsyncSession, approval_id: uuid.UUID) -> list[ApprovalComment]:
    query = select(ApprovalComment).where(ApprovalComment.approval_id == approval_id)
    return list((await session.execute(query.order_by(ApprovalComment.created_at))).scalars())


async def _ensure_entitled(store: PolicyStore, approval: Approval, actor: str) -> None:
    result = await store.check(actor, approval.approver_permission)
    if not result.allowed:
        raise NotEntitled(
            f"deciding needs {approval.approver_permission}: {result.reason}",
            permission=approval.approver_permission,
        )
    if approval.approver_role is not None and not await store.holds_role(actor, approval.approver_role):
        raise NotEntitled(f"deciding needs the role {approval.approver_role}", role=approval.approver_role)


async def may_decide(store: PolicyStore, approval: Approval, actor: str) -> bool:
    """Whether ``actor`` could approve ``approval`` now (for a checker's inbox; ``decide`` re-checks)."""
    if actor == approval.requested_by or actor in approval.excluded_approvers:
        return False
    try:
        await _ensure_entitled(store, approval, actor)
    except NotEntitled:
        return False
    return True


async def decide(
    session: AsyncSession,
    store: PolicyStore,
    approval_id: uuid.UUID,
    *,
    actor: str,
    decision: Decision,
    comment: str,
    executors: Mapping[str, InternalExecutor],
) -> Approval:
    """Record an approval or rejection; completes (and for internal operations applies) it."""
    approval = await get(session, approval_id, for_update=True)
    internal = executors.get(approval.operation)
    if internal is not None:
        await lock_policy(session)
    now = now_utc()
    if effective_state(approval, now) == ApprovalState.expired:
        raise ApprovalExpired(f"approval {approval.id} expired at {approval.expires_at.isoformat()}")
    if approval.state != ApprovalState.pending:
        raise ApprovalNotPending(f"approval {approval.id} is {approval.state}", state=approval.state)
    withdrawing = decision is Decision.reject and actor == approval.requested_by
    if actor == approval.requested_by and not withdrawing:
        raise SelfApproval("the maker of an approval can never be its checker")
    if actor in approval.excluded_approvers:
        raise ApproverExcluded("the subject of this operation cannot decide on it")
    if not withdrawing:
        await _ensure_entitled(store, approval, actor)
    previous = await decisions_of(session, approval.id)
    if any(d.actor == actor for d in previous):
        raise AlreadyDecided("each person decides once on an approval")
    session.add(ApprovalDecision(approval_id=approval.id, actor=actor, decision=decision, comment=comment))
    approvals = sum(1 for d in previous if d.decision == Decision.approve) + (decision is Decision.approve)
    if decision is Decision.reject:
        approval.state = ApprovalState.rejected
        approval.decided_at = now
    elif approvals >= approval.required_approvals:
        approval.state = ApprovalState.approved
        approval.decided_at = now
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        action="approval.withdrawn" if withdrawing else _DECISION_ACTIONS[decision],
        target=str(approval.id),
        detail={"operation": approval.operation, "state": approval.state, "approvals": approvals},
    )
    if approval.state == ApprovalState.approved and internal is not None:
        await internal(session, approval, actor)
        approval.state = ApprovalState.executed
        approval.executed_at = now_utc()
        approval.executed_by = "permissions"
        await session.flush()
        await audit_log.append(
            session,
            actor="permissions",
            actor_kind="service",
            action="approval.executed",
            target=str(approval.id),
            detail={"operation": approval.operation, "payload_hash": approval.payload_hash},
        )
    return approval


async def add_comment(session: AsyncSession, approval_id: uuid.UUID, *, author: str, body: str) -> ApprovalComment:
    approval = await get(session, approval_id)
    comment = ApprovalComment(approval_id=approval.id, author=author, body=body)
    session.add(comment)
    await session.flush()
    await audit_log.append(
        session,
        actor=author,
        action="approval.commented",
        target=str(approval.id),
        detail={"comment_id": str(comment.id)},
    )
    return comment


async def execute(
    session: AsyncSession,
    settings: PermissionsSettings,
    approval_id: uuid.UUID,
    *,
    operation: str,
    presented_hash: str,
    executor: str,
) -> tuple[Approval, list[str]]:
    """Consume an approved approval exactly once on behalf of the executing service."""
    approval = await get(session, approval_id)
    policy = settings.approval_policies.get(approval.operation)
    if policy is None or (policy.executors and executor not in policy.executors):
        raise ExecutorNotAllowed(f"{executor} may not execute {approval.operation}")
    now = now_utc()
    won = (
        await session.execute(
            update(Approval)
            .where(
                Approval.id == approval_id,
                Approval.state == ApprovalState.approved,
                Approval.expires_at > now,
                Approval.operation == operation,
                Approval.payload_hash == presented_hash,
            )
            .values(state=ApprovalState.executed, executed_at=now, executed_by=executor)
            .returning(Approval.id)
        )
    ).first()
    if won is None:
        # Re-read after the UPDATE (which waited for any concurrent winner) to say why.
        await session.refresh(approval)
        await _refuse(approval, operation=operation, presented_hash=presented_hash, now=now)
    await session.refresh(approval)
    approvers = [d.actor for d in await decisions_of(session, approval.id) if d.decision == Decision.approve]
    await audit_log.append(
        session,
        actor=executor,
        actor_kind="service",
        action="approval.executed",
        target=str(approval.id),
        detail={"operation": approval.operation, "payload_hash": approval.payload_hash},
    )
    return approval, approvers


async def _refuse(approval: Approval, *, operation: str, presented_hash: str, now: datetime) -> None:
    error: Exception
    if approval.operation != operation or approval.payload_hash != presented_hash:
        error = ApprovalPayloadMismatch("the operation or payload is not the one that was approved")
    elif approval.state == ApprovalState.executed:
        error = ApprovalAlreadyExecuted(f"approval {approval.id} was executed at {approval.executed_at}")
    elif effective_state(approval, now) == ApprovalState.expired:
        error = ApprovalExpired(f"approval {approval.id} expired at {approval.expires_at.isoformat()}")
    else:
        error = ApprovalNotApproved(f"approval {approval.id} is {approval.state}", state=approval.state)
    raise error


async def list_approvals(
    session: AsyncSession, *, state: str | None, requested_by: str | None, operation: str | None, limit: int
) -> list[Approval]:
    query = select(Approval).order_by(Approval.created_at.desc()).limit(limit)
    now = now_utc()
    if state == ApprovalState.expired:
        query = query.where(
            (Approval.state == ApprovalState.expired)
            | (Approval.state.in_([ApprovalState.pending, ApprovalState.approved]) & (Approval.expires_at <= now))
        )
    elif state in (ApprovalState.pending, ApprovalState.approved):
        query = query.where(Approval.state == state, Approval.expires_at > now)
    elif state is not None:
        query = query.where(Approval.state == state)
    if requested_by is not None:
        query = query.where(Approval.requested_by == requested_by)
    if operation is not None:
        query = query.where(Approval.operation == operation)
    return list((await session.execute(query)).scalars())
