"""Shared lists (R-IV.2)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field


class ListName(StrEnum):
    ip = "ip"
    device = "device"
    payee = "payee"
    phishing_domain = "phishing_domain"


class Verdict(StrEnum):
    block = "block"
    allow = "allow"


class EntryIn(BaseModel):
    value: str = Field(min_length=1, max_length=300)
    verdict: Verdict
    reason: str = Field(min_length=1, max_length=500)
    reference: str | None = Field(default=None, max_length=200)
    expires_at: AwareDatetime | None = None


class EntryOut(BaseModel):
    id: str
    list: str
    value: str
    verdict: str
    reason: str
    reference: str | None
    expires_at: datetime | None
    added_by: str
    added_at: datetime
    removed_by: str | None
    removed_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> EntryOut:
        return cls(
            id=str(row.id),
            list=row.list,
            value=row.value,
            verdict=row.verdict,
            reason=row.reason,
            reference=row.reference,
            expires_at=row.expires_at,
            added_by=row.added_by,
            added_at=row.added_at,
            removed_by=row.removed_by,
            removed_at=row.removed_at,
        )


class EntriesOut(BaseModel):
    entries: list[EntryOut]


class ImportOut(BaseModel):
    added: int
    already_listed: int


class RemoveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
