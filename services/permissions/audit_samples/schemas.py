"""Shapes of the grant sample read by the incidents service's sampling audits."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class TrainingAtGrant(BaseModel):
    course: str
    completed_at: datetime
    expires_at: datetime


class SampledGrant(BaseModel):
    id: uuid.UUID
    subject: str
    role: str
    high_risk: bool
    requested_by: str
    approved_by: str
    approval_id: uuid.UUID | None
    created_at: datetime
    training: TrainingAtGrant | None = Field(description="A training record in force when the grant was made.")


class GrantSample(BaseModel):
    grants: list[SampledGrant]
    cursor: str | None = Field(description="Pass as `after` for the next page; null at the end.")
