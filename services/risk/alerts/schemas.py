"""Alerts for analysts (M5.4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.risk.labels.schemas import LabelValue


class CommentOut(BaseModel):
    author: str
    body: str
    created_at: datetime


class AlertOut(BaseModel):
    id: str
    category: str
    grade: int
    score: float
    status: str
    customer_key: str | None
    staff_id: str | None
    transaction_id: str | None
    decision: str | None
    summary: str
    reasons: list[dict[str, Any]]
    assignee: str | None
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    comments: list[CommentOut] = Field(default_factory=list)

    @classmethod
    def of(cls, row: Any, comments: list[Any] | None = None) -> AlertOut:
        return cls(
            id=str(row.id),
            category=row.category,
            grade=row.grade,
            score=row.score,
            status=row.status,
            customer_key=row.customer_key,
            staff_id=row.staff_id,
            transaction_id=row.transaction_id,
            decision=row.decision,
            summary=row.summary,
            reasons=row.reasons,
            assignee=row.assignee,
            resolution=row.resolution,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
            created_at=row.created_at,
            comments=[CommentOut(author=c.author, body=c.body, created_at=c.created_at) for c in comments or []],
        )


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class AssignIn(BaseModel):
    assignee: str | None = Field(default=None, max_length=64, description="Staff id; the caller when omitted.")


class CommentIn(BaseModel):
    body: str = Field(min_length=1, max_length=4_000)


class ResolveIn(BaseModel):
    label: LabelValue | Literal["no_action"] = Field(
        description="fraud / genuine label the transaction (baselines, training); no_action for staff alerts."
    )
    comment: str = Field(default="", max_length=4_000)


class AnalystSummary(BaseModel):
    analyst: str | None = Field(description="The assignee (else who resolved it); null for alerts nobody took.")
    alerts: int
    open: int = Field(description="Not resolved yet (open or assigned).")
    resolved: int
    outcomes: dict[str, int] = Field(description="Resolved alerts by resolution (fraud, genuine, no_action).")


class AlertsSummaryOut(BaseModel):
    analysts: list[AnalystSummary]
