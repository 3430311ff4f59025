"""Bodies of the team API: roles on an incident, the on-call rota, reports up the chain."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.incidents.models import Assignment, ChainReport, OnCallShift, RotaTier, TeamRole


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: TeamRole
    staff_id: str = Field(min_length=1, max_length=64)
    handover_note: str | None = Field(default=None, max_length=4000)


class AssignmentOut(BaseModel):
    role: str
    staff_id: str
    assigned_at: datetime
    assigned_by: str
    released_at: datetime | None
    handover_note: str | None

    @classmethod
    def of(cls, a: Assignment) -> AssignmentOut:
        return cls(
            role=a.role,
            staff_id=a.staff_id,
            assigned_at=a.assigned_at,
            assigned_by=a.assigned_by,
            released_at=a.released_at,
            handover_note=a.handover_note,
        )


class ShiftBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: RotaTier
    staff_id: str = Field(min_length=1, max_length=64)
    starts_at: datetime
    ends_at: datetime

    @model_validator(mode="after")
    def _ordered(self) -> ShiftBody:
        if self.ends_at <= self.starts_at:
            raise ValueError("a shift ends after it starts")
        return self


class HandoverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: RotaTier
    to_staff_id: str = Field(min_length=1, max_length=64)
    note: str = Field(min_length=1, max_length=4000)


class ShiftOut(BaseModel):
    id: uuid.UUID
    tier: str
    staff_id: str
    starts_at: datetime
    ends_at: datetime
    handover_note: str | None

    @classmethod
    def of(cls, s: OnCallShift) -> ShiftOut:
        return cls(
            id=s.id,
            tier=s.tier,
            staff_id=s.staff_id,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            handover_note=s.handover_note,
        )


class ChainReportOut(BaseModel):
    audience: str
    due_at: datetime
    reported_at: datetime | None
    reported_by: str | None
    overdue: bool

    @classmethod
    def of(cls, r: ChainReport, now: datetime) -> ChainReportOut:
        return cls(
            audience=r.audience,
            due_at=r.due_at,
            reported_at=r.reported_at,
            reported_by=r.reported_by,
            overdue=(r.reported_at or now) > r.due_at,
        )


class ReportedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(default="phone", min_length=1, max_length=64, description="How they were told.")
