"""Maker-checker approvals: staff create and decide, services verify and execute."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from kit.auth import Principal, ServiceCaller, StaffUser
from kit.db import DBSession
from kit.errors import SuiteError
from kit.permissions import RequirePermission
from services.permissions.approvals import service
from services.permissions.approvals.schemas import (
    ApprovalCreate,
    ApprovalOut,
    CommentBody,
    CommentOut,
    DecisionBody,
    ExecuteBody,
    ExecuteOut,
    RequirementBody,
    RequirementOut,
)
from services.permissions.checks.store import Store
from services.permissions.deps import Executors, Settings, StepUp, audit_refusal
from services.permissions.errors import NotEntitled, UnknownOperation
from services.permissions.models import Approval, ApprovalState, Decision

staff = APIRouter(prefix="/staff/approvals", tags=["approvals"])
internal = APIRouter(prefix="/internal", tags=["approvals"])

#: Operations permissions applies itself; they are requested through their own endpoints.
INTERNAL_OPERATIONS = ("role.grant", "role.change", "subject.lift_suspension")


async def _detail(session: DBSession, approval: Approval) -> ApprovalOut:
    return ApprovalOut.of(
        approval,
        service.effective_state(approval),
        await service.decisions_of(session, approval.id),
        await service.comments_of(session, approval.id),
    )


async def _readable(store: Store, approval: Approval, principal: Principal) -> None:
    if principal.subject == approval.requested_by:
        return
    result = await store.check(principal.subject, "approval:read")
    if not result.allowed:
        raise NotEntitled(f"reading approvals needs approval:read: {result.reason}")


@staff.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalOut,
    summary="Ask for the approval of a high-risk operation",
    dependencies=[StepUp],
)
async def create_approval(
    body: ApprovalCreate,
    session: DBSession,
    settings: Settings,
    principal: Annotated[Principal, Depends(RequirePermission("approval:create"))],
) -> ApprovalOut:
    """Store the exact payload and its hash; the policy of the operation (from settings) fixes how many
    approvals are needed, from whom, and until when. Role grants and suspension lifts have their own
    endpoints (`/staff/grant-requests`, `/staff/subjects/{subject}/suspension/lift-requests`)."""
    if body.operation in INTERNAL_OPERATIONS:
        raise UnknownOperation(f"{body.operation} is requested through its own endpoint", operation=body.operation)
    approval = await service.create(
        session,
        settings,
        operation=body.operation,
        payload=body.payload,
        requested_by=principal.subject,
        comment=body.comment,
    )
    return ApprovalOut.of(approval, approval.state)


@staff.get("", response_model=list[ApprovalOut], summary="List approvals")
async def list_approvals(
    session: DBSession,
    *,
    store: Store,
    principal: Annotated[Principal, Depends(RequirePermission("approval:read"))],
    state: Annotated[ApprovalState | None, Query()] = None,
    operation: Annotated[str | None, Query(max_length=100)] = None,
    mine: bool = False,
    actionable: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ApprovalOut]:
    """Newest first; `state` filters by effective state; `mine=true` lists the caller's own requests;
    `actionable=true` lists the pending approvals the caller may decide on now (a checker's inbox)."""
    approvals = await service.list_approvals(
        session,
        state=ApprovalState.pending.value if actionable else (state.value if state else None),
        requested_by=principal.subject if mine else None,
        operation=operation,
        limit=limit,
    )
    if actionable:
        approvals = [a for a in approvals if await service.may_decide(store, a, principal.subject)]
    return [ApprovalOut.of(a, service.effective_state(a)) for a in approvals]


@staff.get("/{approval_id}", response_model=ApprovalOut, summary="One approval with its decisions and comments")
async def get_approval(approval_id: uuid.UUID, session: DBSession, store: Store, principal: StaffUser) -> ApprovalOut:
    """Readable by its requester and by holders of `approval:read`."""
    approval = await service.get(session, approval_id)
    await _readable(store, approval, principal)
    return await _detail(session, approval)


async def _decide(
    request: Request,
    *,
    session: DBSession,
    store: Store,
    executors: Executors,
    principal: Principal,
    approval_id: uuid.UUID,
    decision: Decision,
    comment: str,
) -> ApprovalOut:
    """One decision by one checker; a refused attempt is audited before the error is answered."""
    try:
        approval = await service.decide(
            session,
            store,
            approval_id,
            actor=principal.subject,
            decision=decision,
            comment=comment,
            executors=executors,
        )
    except SuiteError as exc:
        await audit_refusal(
            request,
            session,
            actor=principal.subject,
            actor_kind="staff",
            action=f"approval.{decision.value}",
            target=str(approval_id),
            error=exc,
        )
        raise
    return await _detail(session, approval)


@staff.post(
    "/{approval_id}/approve", response_model=ApprovalOut, summary="Approve (as a checker)", dependencies=[StepUp]
)
async def approve(
    approval_id: uuid.UUID,
    *,
    request: Request,
    body: DecisionBody,
    session: DBSession,
    store: Store,
    executors: Executors,
    principal: StaffUser,
) -> ApprovalOut:
    """The checker must hold the policy's approver permission (and role), must not be the maker nor
    the subject of the operation, and decides once. The last required approval makes it `approved`;
    role grants and suspension lifts are then applied at once (`executed`). Refusals are audited."""
    return await _decide(
        request,
        session=session,
        store=store,
        executors=executors,
        principal=principal,
        approval_id=approval_id,
        decision=Decision.approve,
        comment=body.comment,
    )


@staff.post(
    "/{approval_id}/reject",
    response_model=ApprovalOut,
    summary="Reject (or withdraw one's own request)",
    dependencies=[StepUp],
)
async def reject(
    approval_id: uuid.UUID,
    *,
    request: Request,
    body: DecisionBody,
    session: DBSession,
    store: Store,
    executors: Executors,
    principal: StaffUser,
) -> ApprovalOut:
    """An entitled checker rejects; the maker may withdraw their own pending request. Refusals are audited."""
    return await _decide(
        request,
        session=session,
        store=store,
        executors=executors,
        principal=principal,
        approval_id=approval_id,
        decision=Decision.reject,
        comment=body.comment,
    )


@staff.post(
    "/{approval_id}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentOut,
    summary="Comment on an approval",
)
async def comment(
    approval_id: uuid.UUID, body: CommentBody, session: DBSession, store: Store, principal: StaffUser
) -> CommentOut:
    """Open to whoever may read the approval."""
    approval = await service.get(session, approval_id)
    await _readable(store, approval, principal)
    created = await service.add_comment(session, approval.id, author=principal.subject, body=body.body)
    return CommentOut(id=created.id, author=created.author, body=created.body, created_at=created.created_at)


@internal.get("/approvals/{approval_id}", response_model=ApprovalOut, summary="An approval, for its executor")
async def get_for_service(approval_id: uuid.UUID, session: DBSession, caller: ServiceCaller) -> ApprovalOut:
    """Lets the executing service show what was approved before executing it."""
    return await _detail(session, await service.get(session, approval_id))


@internal.post(
    "/approvals/{approval_id}/execute",
    response_model=ExecuteOut,
    summary="Consume an approval exactly once",
    responses={
        409: {
            "description": "approval_not_approved, approval_already_executed, "
            "approval_payload_mismatch or approval_expired"
        }
    },
)
async def execute(
    approval_id: uuid.UUID,
    body: ExecuteBody,
    *,
    request: Request,
    session: DBSession,
    settings: Settings,
    caller: ServiceCaller,
) -> ExecuteOut:
    """The executing service presents the operation and the payload's hash (`kit.permissions.payload_hash`);
    the approval must be approved, unexpired, unexecuted and bound to exactly that payload. One
    conditional update decides, so concurrent executions yield one 200 and 409s (each refusal audited)."""
    try:
        approval, approvers = await service.execute(
            session,
            settings,
            approval_id,
            operation=body.operation,
            presented_hash=body.payload_hash,
            executor=caller.subject,
        )
    except SuiteError as exc:
        await audit_refusal(
            request,
            session,
            actor=caller.subject,
            actor_kind="service",
            action="approval.execute",
            target=str(approval_id),
            error=exc,
        )
        raise
    assert approval.executed_at is not None
    return ExecuteOut(
        executed=True,
        approval_id=approval.id,
        operation=approval.operation,
        approved_by=approvers,
        executed_at=approval.executed_at,
    )


@internal.post("/approval-requirements", response_model=RequirementOut, summary="Does this operation need approval?")
async def requirement(body: RequirementBody, settings: Settings, caller: ServiceCaller) -> RequirementOut:
    """Answers from the policies in settings (thresholds included), so services share one source of truth."""
    required, reason = service.requirement(settings, body.operation, body.payload)
    policy = settings.approval_policies.get(body.operation)
    if not required or policy is None:
        return RequirementOut(required=required, reason=reason)
    return RequirementOut(
        required=True,
        reason=reason,
        required_approvals=policy.required_approvals,
        approver_permission=policy.approver_permission,
        approver_role=policy.approver_role,
    )
