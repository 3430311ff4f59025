"""Scoring requests and answers (the contract in docs/contracts.md, section Risk)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field


class Decision(StrEnum):
    allow = "allow"
    step_up = "step_up"
    block = "block"
    freeze = "freeze"


class Reason(BaseModel):
    code: str
    detail: str
    weight: float


class TransactionIn(BaseModel):
    transaction_id: str = Field(min_length=1, max_length=128)
    account_id: str = Field(min_length=1, max_length=64, description="The core system's account.")
    customer_id: str | None = Field(default=None, max_length=64, description="identity's customer, when known.")
    payee: str = Field(min_length=1, max_length=200, description="Beneficiary account, merchant or terminal.")
    amount_minor: int = Field(ge=0, le=10**15)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    occurred_at: AwareDatetime
    kind: str = Field(
        pattern=r"^[a-z][a-z_]{1,31}$",
        description="transfer, card_payment, cash_withdrawal, crypto_withdrawal, bill_payment (extendable).",
    )
    channel: str = Field(min_length=1, max_length=32)
    ip: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=64)
    session_id: str | None = Field(default=None, max_length=64)
    approval_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "The maker-checker approval (`transfer.execute`) the core system holds for this transaction, when "
            "one was needed: kept with the decision so sampling audits can check every large transfer's approval."
        ),
    )


class TransactionScore(BaseModel):
    transaction_id: str
    score: float = Field(ge=0, le=100)
    decision: Decision
    reasons: list[Reason]
    model_version: str | None
    ruleset_version: int | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> TransactionScore:
        return cls(
            transaction_id=row["transaction_id"],
            score=row["score"],
            decision=Decision(row["decision"]),
            reasons=[Reason(**r) for r in row["reasons"]],
            model_version=row["model_version"],
            ruleset_version=row["ruleset_version"],
        )


class LoginIn(BaseModel):
    account_id: str = Field(min_length=1, max_length=64)
    account_kind: str = Field(default="customer", max_length=16)
    risk_level: str | None = Field(default=None, max_length=16)
    ip: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=200)
    signals: list[str] = Field(default_factory=list, max_length=20)
    occurred_at: datetime


class LoginDecision(StrEnum):
    allow = "allow"
    challenge = "challenge"
    deny = "deny"


class LoginScore(BaseModel):
    decision: LoginDecision
    reasons: list[str]
    score: float
