"""Staff behaviour signals (M2.2) from vault and permissions."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field


class StaffEventKind(StrEnum):
    personal_data_read = "personal_data_read"
    approval = "approval"
    quota_near = "quota_near"


class StaffEventIn(BaseModel):
    staff_id: uuid.UUID
    kind: StaffEventKind
    count: int = Field(ge=1, le=1_000_000)
    occurred_at: AwareDatetime
    detail: dict[str, Any] = Field(default_factory=dict)


class StaffEventOut(BaseModel):
    accepted: bool
    abnormal: bool
    suspension_requested: bool
