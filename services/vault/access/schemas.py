"""Models of the access log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AccessEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 42,
                    "id": "9d7c1c5e-52a8-4a4e-a0c4-3a4b2d6f7e81",
                    "occurred_at": "2026-11-21T09:12:03.511Z",
                    "actor": "3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10",
                    "actor_kind": "staff",
                    "action": "vault.decrypt",
                    "target": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11",
                    "outcome": "success",
                    "detail": {
                        "fields": ["name", "phone"],
                        "purpose": "customer_service",
                        "records": ["0c9f5d7e-3b1a-4f57-8c1e-7d2a9b6e4f30"],
                        "subjects": ["5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11"],
                        "unmasked": True,
                        "grant_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                    },
                }
            ]
        }
    )

    seq: int
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    actor_kind: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    request_id: str | None


class AccessPage(BaseModel):
    entries: list[AccessEntry]
    next_after: int | None = Field(description="Pass as `after` to read the next page; null at the end.")


class CustomerAccess(BaseModel):
    """What a customer sees of the reads of their data: when, by whom (kind), why and what."""

    occurred_at: datetime
    actor_kind: str
    action: str
    outcome: str
    purpose: str | None
    fields: list[str]


class ChainReport(BaseModel):
    ok: bool
    entries_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None
    problem: str | None
