"""Bodies of the SLA API: clocks, pauses, escalations."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.incidents.models import Escalation, SlaClock
from services.incidents.sla.service import PauseReason


class ClockOut(BaseModel):
    incident_id: uuid.UUID
    kind: str
    target_seconds: int
    started_at: datetime
    warn_at: datetime
    due_at: datetime
    met_at: datetime | None
    paused_at: datetime | None
    pause_reason: str | None
    paused_seconds: int
    warned_at: datetime | None
    breached_at: datetime | None
    breached: bool

    @classmethod
    def of(cls, c: SlaClock) -> ClockOut:
        return cls(
            incident_id=c.incident_id,
            kind=c.kind,
            target_seconds=c.target_seconds,
            started_at=c.started_at,
            warn_at=c.warn_at,
            due_at=c.due_at,
            met_at=c.met_at,
            paused_at=c.paused_at,
            pause_reason=c.pause_reason,
            paused_seconds=c.paused_seconds,
            warned_at=c.warned_at,
            breached_at=c.breached_at,
            breached=c.breached_at is not None,
        )


class PauseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: PauseReason


class EscalationOut(BaseModel):
    id: uuid.UUID
    incident_id: uuid.UUID
    kind: str
    subject_ref: str
    tier: str
    recipient: str | None
    recipient_role: str | None
    message: str
    due_at: datetime | None
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    @classmethod
    def of(cls, e: Escalation) -> EscalationOut:
        return cls(
            id=e.id,
            incident_id=e.incident_id,
            kind=e.kind,
            subject_ref=e.subject_ref,
            tier=e.tier,
            recipient=e.recipient,
            recipient_role=e.recipient_role,
            message=e.message,
            due_at=e.due_at,
            created_at=e.created_at,
            acknowledged_at=e.acknowledged_at,
            acknowledged_by=e.acknowledged_by,
        )
