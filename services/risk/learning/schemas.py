"""Shapes of the model registry's staff API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.risk.models import ModelVersion


class ModelOut(BaseModel):
    id: uuid.UUID
    version: str
    state: str
    format: str
    sha256: str
    size_bytes: int
    metrics: dict[str, Any] | None
    train_from: datetime
    train_to: datetime
    test_from: datetime
    test_to: datetime
    note: str
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    approval_id: uuid.UUID | None

    @classmethod
    def of(cls, m: ModelVersion) -> ModelOut:
        return cls(
            id=m.id,
            version=m.version,
            state=m.state,
            format=m.format,
            sha256=m.sha256,
            size_bytes=m.size_bytes,
            metrics=m.metrics,
            train_from=m.train_from,
            train_to=m.train_to,
            test_from=m.test_from,
            test_to=m.test_to,
            note=m.note,
            created_by=m.created_by,
            created_at=m.created_at,
            activated_at=m.activated_at,
            retired_at=m.retired_at,
            approval_id=m.approval_id,
        )


class ApprovalBody(BaseModel):
    """Without ``approval_id`` the answer is 403 ``approval_required`` with the exact payload to approve."""

    approval_id: uuid.UUID | None = None


class ApprovalRequest(BaseModel):
    """What to ask permissions to approve (``POST /v1/permissions/staff/approvals``)."""

    operation: str
    payload: dict[str, Any]
    payload_hash: str


class ChangeOut(BaseModel):
    kind: str
    active: ModelOut
    previous: ModelOut | None
    approval_id: uuid.UUID
    approved_by: list[str] = Field(default_factory=list)
