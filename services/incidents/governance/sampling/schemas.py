"""Shapes of sampling audits."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, Field, model_validator


class Check(enum.StrEnum):
    #: Every transfer from the threshold up (default 500,000.00) has a complete approval.
    large_transfers = "large_transfers"
    #: Every unmasked read of personal data had a purpose and, where required, an approval.
    unmasked_reads = "unmasked_reads"
    #: Every grant of a high-risk role had a second person and a training record.
    high_risk_grants = "high_risk_grants"


class SamplingRequest(BaseModel):
    check: Check
    period_from: AwareDatetime
    period_to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.period_from >= self.period_to:
            raise ValueError("period_from must be before period_to")
        return self


class SamplingRunView(BaseModel):
    id: uuid.UUID
    audit_id: uuid.UUID
    check: Check
    period_from: datetime
    period_to: datetime
    sampled: int
    exceptions: int
    new_findings: int = Field(description="Findings this run added (an exception found before is not repeated).")
    actor: str
    run_at: datetime
