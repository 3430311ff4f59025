"""Shapes of the unmasked-read sample read by the incidents service's sampling audits."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class SampledRead(BaseModel):
    seq: int = Field(description="The entry's sequence number in the vault's audit chain.")
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    actor_kind: str
    purpose: str | None
    reference: str | None
    fields: list[str]
    records: int
    approval_required: bool = Field(description="Whether the vault's policy today asks an approval for such a read.")
    approval_id: str | None
    approved_by: list[str]


class ReadSample(BaseModel):
    reads: list[SampledRead]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end.")
