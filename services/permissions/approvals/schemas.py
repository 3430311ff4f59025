"""Bodies of the approval API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.permissions.models import Approval, ApprovalComment, ApprovalDecision


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "operation": "account.unfreeze",
                    "payload": {"account_id": "6b1e5d0c-3f0a-4e55-8f6e-2d7c9a1b4e21"},
                    "comment": "customer verified at the branch",
                }
            ]
        },
    )

    operation: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
    payload: dict[str, Any] = Field(description="The exact operation; its canonical SHA-256 binds the approval.")
    comment: str = Field(default="", max_length=2000)


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"comment": "checked the payee"}]})

    comment: str = Field(default="", max_length=2000)


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"body": "please attach the ticket"}]})

    body: str = Field(min_length=1, max_length=2000)


class DecisionOut(BaseModel):
    actor: str
    decision: str
    comment: str
    created_at: datetime


class CommentOut(BaseModel):
    id: uuid.UUID
    author: str
    body: str
    created_at: datetime


class ApprovalOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f4a8e-2d4c-4f0e-9d55-1c3f9e7a6b20",
                    "operation": "account.unfreeze",
                    "payload": {"account_id": "6b1e5d0c-3f0a-4e55-8f6e-2d7c9a1b4e21"},
                    "payload_hash": "4f9c...e1",
                    "state": "pending",
                    "requested_by": "3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10",
                    "required_approvals": 1,
                    "approver_permission": "account:unfreeze",
                    "approver_role": None,
                    "expires_at": "2026-11-22T09:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    operation: str
    payload: Any
    payload_hash: str
    state: str
    requested_by: str
    required_approvals: int
    approver_permission: str
    approver_role: str | None
    excluded_approvers: list[str] = Field(
        default_factory=list, description="Who may not decide: the people the operation is about or benefits."
    )
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    executed_at: datetime | None = None
    executed_by: str | None = None
    decisions: list[DecisionOut] = Field(default_factory=list)
    comments: list[CommentOut] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        approval: Approval,
        state: str,
        decisions: list[ApprovalDecision] | None = None,
        comments: list[ApprovalComment] | None = None,
    ) -> ApprovalOut:
        return cls(
            id=approval.id,
            operation=approval.operation,
            payload=approval.payload,
            payload_hash=approval.payload_hash,
            state=state,
            requested_by=approval.requested_by,
            required_approvals=approval.required_approvals,
            approver_permission=approval.approver_permission,
            approver_role=approval.approver_role,
            excluded_approvers=list(approval.excluded_approvers or []),
            created_at=approval.created_at,
            expires_at=approval.expires_at,
            decided_at=approval.decided_at,
            executed_at=approval.executed_at,
            executed_by=approval.executed_by,
            decisions=[
                DecisionOut(actor=d.actor, decision=d.decision, comment=d.comment, created_at=d.created_at)
                for d in decisions or ()
            ],
            comments=[
                CommentOut(id=c.id, author=c.author, body=c.body, created_at=c.created_at) for c in comments or ()
            ],
        )


class ExecuteBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"operation": "account.unfreeze", "payload_hash": "4f9c...e1"}]},
    )

    operation: str = Field(min_length=1, max_length=100)
    payload_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ExecuteOut(BaseModel):
    executed: bool
    approval_id: uuid.UUID
    operation: str
    approved_by: list[str]
    executed_at: datetime


class RequirementBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"operation": "transfer.execute", "payload": {"amount_minor": 8_000_000}}]},
    )

    operation: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)


class RequirementOut(BaseModel):
    required: bool
    reason: str
    required_approvals: int | None = None
    approver_permission: str | None = None
    approver_role: str | None = None
