"""Rule sets: versions, changes by approval, shadow runs and backtests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field


class RuleIn(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    expression: str = Field(min_length=1, max_length=2_000, description="CEL over the variables in docs/risk.md.")
    weight: float = Field(ge=0, le=1)
    category: str = Field(default="transaction", pattern=r"^(behaviour|transaction|account)$")
    detail: str = Field(default="", max_length=300)
    min_decision: str = Field(default="allow", pattern=r"^(allow|step_up|block|freeze)$")


class RuleSetIn(BaseModel):
    rules: list[RuleIn] = Field(min_length=1, max_length=500)
    comment: str = Field(default="", max_length=2_000)


class ApprovalRequest(BaseModel):
    """What the maker submits to permissions (`POST /v1/permissions/staff/approvals`)."""

    operation: str
    payload: dict[str, Any]


class RuleSetOut(BaseModel):
    version: int
    state: str
    shadow: bool
    rules: list[dict[str, Any]]
    comment: str
    created_by: str
    created_at: datetime
    approval_id: str | None
    activated_by: str | None
    activated_at: datetime | None
    approval_request: ApprovalRequest | None = None

    @classmethod
    def of(cls, row: Any, approval_request: ApprovalRequest | None = None) -> RuleSetOut:
        return cls(
            version=row.version,
            state=row.state,
            shadow=row.shadow,
            rules=row.rules,
            comment=row.comment,
            created_by=row.created_by,
            created_at=row.created_at,
            approval_id=row.approval_id,
            activated_by=row.activated_by,
            activated_at=row.activated_at,
            approval_request=approval_request,
        )


class RuleSetsOut(BaseModel):
    rulesets: list[RuleSetOut]


class ActivationIn(BaseModel):
    approval_id: str = Field(min_length=1, max_length=64)


class ShadowIn(BaseModel):
    enabled: bool


class ShadowReport(BaseModel):
    version: int
    scored: int
    agreeing: int
    changed: dict[str, int] = Field(description='"live->shadow" decision pairs that differ, with counts.')
    examples: list[dict[str, Any]]


class BacktestIn(BaseModel):
    occurred_from: AwareDatetime
    occurred_to: AwareDatetime
    max_transactions: int = Field(default=100_000, ge=1, le=1_000_000)


class Metrics(BaseModel):
    transactions: int
    labelled: int
    flagged: int = Field(description="Alert volume: decisions block/freeze or a score at the alert threshold.")
    true_positives: int
    precision: float | None
    recall: float | None
    decisions: dict[str, int]


class BacktestOut(BaseModel):
    version: int
    baseline_version: int
    candidate: Metrics
    baseline: Metrics
    changed_decisions: int
    changed: dict[str, int]
    examples: list[dict[str, Any]]
