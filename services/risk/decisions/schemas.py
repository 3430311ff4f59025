"""The decisions listing (sampling audits by incidents)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class DecisionOut(BaseModel):
    transaction_id: str
    account_id: str
    customer_id: str | None
    kind: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    score: float
    decision: str
    approval_id: str | None = None


class DecisionsOut(BaseModel):
    decisions: list[DecisionOut]
    cursor: str | None
