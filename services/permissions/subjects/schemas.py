"""Bodies of the subject API: status, suspension, training."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.permissions.grants.schemas import GrantOut
from services.permissions.models import SubjectStatus, Suspension, TrainingRecord


class StatusBody(BaseModel):
    # Sent through other services' outboxes: unknown extra fields are ignored, so a sender that
    # adds one does not get its deliveries refused (and a freeze lost).
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"status": "frozen", "reason": "incident 2026-0042"}]}
    )

    status: SubjectStatus
    reason: str = Field(default="", max_length=2000)


class StatusOut(BaseModel):
    subject: str
    status: str
    applied: bool = Field(description="False when this delivery was a duplicate (same Idempotency-Key).")


class SuspensionBody(BaseModel):
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"reason": "bulk customer reads outside working hours"}]}
    )

    reason: str = Field(min_length=1, max_length=2000)


class SuspensionOut(BaseModel):
    id: uuid.UUID
    subject: str
    reason: str
    source: str
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None
    created: bool = True

    @classmethod
    def of(cls, suspension: Suspension, created: bool = True) -> SuspensionOut:
        return cls(
            id=suspension.id,
            subject=suspension.subject,
            reason=suspension.reason,
            source=suspension.source,
            created_at=suspension.created_at,
            lifted_at=suspension.lifted_at,
            lifted_by=suspension.lifted_by,
            created=created,
        )


class LiftBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"comment": "reviewed, false positive"}]})

    comment: str = Field(default="", max_length=2000)


class TrainingBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject": "3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10",
                    "course": "security-awareness",
                    "completed_at": "2026-11-01T10:00:00Z",
                    "score": 92,
                }
            ]
        },
    )

    subject: uuid.UUID
    course: str | None = Field(default=None, min_length=1, max_length=100, description="Defaults to the required one.")
    completed_at: datetime
    expires_at: datetime | None = Field(default=None, description="Defaults to completed_at + the validity setting.")
    score: int | None = Field(default=None, ge=0, le=100)


class TrainingOut(BaseModel):
    id: uuid.UUID
    subject: str
    course: str
    completed_at: datetime
    expires_at: datetime
    score: int | None
    recorded_by: str

    @classmethod
    def of(cls, record: TrainingRecord) -> TrainingOut:
        return cls(
            id=record.id,
            subject=record.subject,
            course=record.course,
            completed_at=record.completed_at,
            expires_at=record.expires_at,
            score=record.score,
            recorded_by=record.recorded_by,
        )


class SubjectOut(BaseModel):
    subject: str
    status: str
    suspension: SuspensionOut | None
    grants: list[GrantOut]
    trainings: list[TrainingOut]
