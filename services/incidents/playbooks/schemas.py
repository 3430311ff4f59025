"""Bodies of the playbook API: a playbook is data (ordered steps), versioned and changed by approval."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.incidents.models import IncidentType, Playbook, StepMode, StepRun


class StepAction(enum.StrEnum):
    freeze_account = "freeze_account"
    revoke_sessions = "revoke_sessions"
    suspend_staff = "suspend_staff"
    block_ip = "block_ip"
    block_payee = "block_payee"
    notify_customer = "notify_customer"
    notify_regulator = "notify_regulator"
    assign_responder = "assign_responder"
    restore_backup = "restore_backup"
    task = "task"


#: Actions a person does (with a checklist); they can never run automatically.
MANUAL_ONLY = frozenset({StepAction.restore_backup, StepAction.task})


class Phase(enum.StrEnum):
    triage = "triage"
    containment = "containment"
    communication = "communication"
    eradication = "eradication"
    recovery = "recovery"


class StepDefinition(BaseModel):
    """One step: what it does, whether it runs by itself, and whether later steps wait for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: StepAction
    mode: StepMode = StepMode.automatic
    title: str = Field(min_length=1, max_length=200)
    phase: Phase = Phase.containment
    blocking: bool = Field(default=False, description="Later steps start only once this one succeeded or was skipped.")
    checklist: list[str] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _manual_only(self) -> StepDefinition:
        if self.action in MANUAL_ONLY and self.mode is StepMode.automatic:
            raise ValueError(f"{self.action} steps are manual (a person follows the checklist)")
        return self


class PlaybookChange(BaseModel):
    """A new version of a type's playbook; `approval_id` names an approved `incidents.playbook_change`
    whose payload is exactly `{"type", "name", "steps"}` of this body."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    steps: list[StepDefinition] = Field(min_length=1, max_length=40)
    approval_id: uuid.UUID


class PlaybookOut(BaseModel):
    id: uuid.UUID
    type: IncidentType
    version: int
    name: str
    steps: list[dict[str, Any]]
    active: bool
    created_by: str
    approval_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, p: Playbook) -> PlaybookOut:
        return cls(
            id=p.id,
            type=IncidentType(p.type),
            version=p.version,
            name=p.name,
            steps=p.steps,
            active=p.active,
            created_by=p.created_by,
            approval_id=p.approval_id,
            created_at=p.created_at,
        )


class StepOut(BaseModel):
    position: int
    action: str
    mode: str
    phase: str
    blocking: bool
    title: str
    checklist: list[str]
    status: str
    attempt: int
    outbox_keys: list[str]
    last_error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    finished_by: str | None
    note: str | None

    @classmethod
    def of(cls, s: StepRun) -> StepOut:
        return cls(
            position=s.position,
            action=s.action,
            mode=s.mode,
            phase=s.phase,
            blocking=s.blocking,
            title=s.title,
            checklist=s.checklist,
            status=s.status,
            attempt=s.attempt,
            outbox_keys=s.outbox_keys,
            last_error=s.last_error,
            started_at=s.started_at,
            finished_at=s.finished_at,
            finished_by=s.finished_by,
            note=s.note,
        )


class SkipBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class CompleteBody(BaseModel):
    """A manual step done: every checklist item confirmed, with a note of what was done."""

    note: str = Field(min_length=1, max_length=4000)
    checklist_done: list[str] = Field(default_factory=list)
