"""Shapes of the risk register."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

from services.incidents.governance.register.matrix import Level

Score = Field(ge=1, le=5)


class Category(enum.StrEnum):
    technical = "technical"
    operational = "operational"
    customer = "customer"
    compliance = "compliance"


class RiskStatus(enum.StrEnum):
    open = "open"
    closed = "closed"


class Plan(BaseModel):
    """The control plan (R-III.2(1)): target, measures, response flow with contacts, how it is verified."""

    control_target: str = Field(min_length=1, max_length=2000)
    measures: list[str] = Field(min_length=1, max_length=50)
    response_flow: str = Field(min_length=1, max_length=4000)
    verification: str = Field(min_length=1, max_length=2000)


class RiskCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    category: Category
    likelihood: int = Score
    impact: int = Score
    owner: str = Field(min_length=1, max_length=200, description="Responsible department or post.")
    triggers: str = Field(default="", max_length=2000, description="Potential trigger conditions.")
    controls: list[str] = Field(default_factory=list, max_length=50)
    plan: Plan
    review_interval_days: int | None = Field(default=None, ge=1, le=730)
    next_review_on: date | None = None


class RiskUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, min_length=1, max_length=4000)
    category: Category | None = None
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    triggers: str | None = Field(default=None, max_length=2000)
    controls: list[str] | None = Field(default=None, max_length=50)
    plan: Plan | None = None
    review_interval_days: int | None = Field(default=None, ge=1, le=730)
    next_review_on: date | None = None
    status: RiskStatus | None = None


class ReviewCreate(BaseModel):
    """A review re-assesses the risk; the next review is due one interval later."""

    likelihood: int = Score
    impact: int = Score
    note: str = Field(min_length=1, max_length=4000)


class ReviewView(BaseModel):
    id: uuid.UUID
    reviewed_on: date
    reviewer: str
    likelihood: int
    impact: int
    level: Level
    note: str


class RiskView(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    category: Category
    likelihood: int
    impact: int
    score: int
    level: Level
    owner: str
    triggers: str
    controls: list[str]
    plan: Plan
    status: RiskStatus
    review_interval_days: int
    last_reviewed_on: date | None
    next_review_on: date
    review_overdue: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class HeatCell(BaseModel):
    likelihood: int
    impact: int
    level: Level
    count: int
    risks: list[str] = Field(description="Titles of the open risks in the cell.")


class HeatMap(BaseModel):
    cells: list[HeatCell]
    overdue_reviews: int
