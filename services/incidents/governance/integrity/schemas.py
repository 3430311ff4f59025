"""Shapes of the suite-wide audit verification."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class ChainStatus(enum.StrEnum):
    ok = "ok"
    tampered = "tampered"
    unreachable = "unreachable"
    refused = "refused"


class FirstBad(BaseModel):
    seq: int
    problem: str


class ServiceChain(BaseModel):
    service: str
    status: ChainStatus
    entries: int | None = None
    first_bad: FirstBad | None = None
    checkpoints_checked: int | None = None
    latest_checkpoint_seq: int | None = None
    error: str | None = Field(default=None, description="Why the service could not be verified (status code, ...).")


class SuiteVerification(BaseModel):
    id: uuid.UUID
    run_at: datetime
    actor: str
    ok: bool = Field(description="Every service answered and every chain is intact.")
    services: list[ServiceChain]
