"""Bodies of the post-mortem API: the review, corrective actions, accountability."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.incidents.incidents.schemas import EventOut
from services.incidents.models import Accountability, CorrectiveAction, PostMortem, ResponsibilityKind


class PostMortemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root_cause: str = Field(default="", max_length=20_000)
    impact: str = Field(default="", max_length=20_000)
    went_well: str = Field(default="", max_length=20_000)
    went_badly: str = Field(default="", max_length=20_000)
    lessons: str = Field(default="", max_length=20_000)


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    owner: str = Field(min_length=1, max_length=64)
    due_at: datetime


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: str = Field(min_length=1, max_length=4000)


class ActionOut(BaseModel):
    id: uuid.UUID
    incident_id: uuid.UUID
    title: str
    owner: str
    due_at: datetime
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    resolution: str | None
    escalated_at: datetime | None
    overdue: bool

    @classmethod
    def of(cls, a: CorrectiveAction, now: datetime) -> ActionOut:
        return cls(
            id=a.id,
            incident_id=a.incident_id,
            title=a.title,
            owner=a.owner,
            due_at=a.due_at,
            created_by=a.created_by,
            created_at=a.created_at,
            closed_at=a.closed_at,
            closed_by=a.closed_by,
            resolution=a.resolution,
            escalated_at=a.escalated_at,
            overdue=a.closed_at is None and now > a.due_at,
        )


class AccountabilityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ResponsibilityKind
    responsible: str = Field(min_length=1, max_length=200, description="A staff id, a team or a supplier.")
    finding: str = Field(min_length=1, max_length=20_000)
    decision: str = Field(min_length=1, max_length=20_000)


class AccountabilityOut(BaseModel):
    id: uuid.UUID
    kind: str
    responsible: str
    finding: str
    decision: str
    decided_by: str
    decided_at: datetime

    @classmethod
    def of(cls, a: Accountability) -> AccountabilityOut:
        return cls(
            id=a.id,
            kind=a.kind,
            responsible=a.responsible,
            finding=a.finding,
            decision=a.decision,
            decided_by=a.decided_by,
            decided_at=a.decided_at,
        )


class PostMortemOut(BaseModel):
    incident_id: uuid.UUID
    root_cause: str
    impact: str
    went_well: str
    went_badly: str
    lessons: str
    author: str | None
    created_at: datetime | None
    updated_at: datetime | None
    timeline: list[EventOut]
    corrective_actions: list[ActionOut]
    accountability: list[AccountabilityOut]

    @classmethod
    def of(
        cls,
        incident_id: uuid.UUID,
        pm: PostMortem | None,
        timeline: list[EventOut],
        actions: list[ActionOut],
        accountability: list[AccountabilityOut],
    ) -> PostMortemOut:
        return cls(
            incident_id=incident_id,
            root_cause=pm.root_cause if pm else "",
            impact=pm.impact if pm else "",
            went_well=pm.went_well if pm else "",
            went_badly=pm.went_badly if pm else "",
            lessons=pm.lessons if pm else "",
            author=pm.author if pm else None,
            created_at=pm.created_at if pm else None,
            updated_at=pm.updated_at if pm else None,
            timeline=timeline,
            corrective_actions=actions,
            accountability=accountability,
        )
