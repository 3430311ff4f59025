"""Bodies of the access-review API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.permissions.models import ReviewItem


class AssignmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewer: uuid.UUID = Field(description="The manager who certifies these subjects' grants.")
    subjects: list[uuid.UUID] = Field(min_length=1, max_length=1000)


class CampaignBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "2026 Q4 recertification",
                    "due_at": "2026-12-15T00:00:00Z",
                    "assignments": [
                        {
                            "reviewer": "8a2b0c1d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                            "subjects": ["3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10"],
                        }
                    ],
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    due_at: datetime
    assignments: list[AssignmentBody] = Field(min_length=1, max_length=500)


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    created_by: str
    due_at: datetime
    counts: dict[str, int]
    closed_at: datetime | None = None
    overdue: bool


class ItemOut(BaseModel):
    id: uuid.UUID
    grant_id: uuid.UUID
    subject: str
    role: str
    reviewer: str
    decision: str
    decided_at: datetime | None

    @classmethod
    def of(cls, item: ReviewItem) -> ItemOut:
        return cls(
            id=item.id,
            grant_id=item.grant_id,
            subject=item.subject,
            role=item.role_name,
            reviewer=item.reviewer,
            decision=item.decision,
            decided_at=item.decided_at,
        )


class ItemDecisionBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"decision": "revoked", "comment": "left the team"}]}
    )

    decision: Literal["certified", "revoked"]
    comment: str = Field(default="", max_length=2000)


class OverPrivilegeOut(BaseModel):
    """Each list holds at most ``limit`` entries; ``counts`` has the full numbers."""

    generated_at: datetime
    counts: dict[str, int]
    unused_grants: list[dict[str, Any]]
    sod_conflicts: list[dict[str, Any]]
    grants_without_training: list[dict[str, Any]]
