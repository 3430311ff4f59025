"""Shapes of vulnerabilities and their fix cycle."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class Severity(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class VulnerabilityStatus(enum.StrEnum):
    open = "open"
    fixed = "fixed"
    accepted = "accepted"


class VulnerabilityCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    severity: Severity
    system: str = Field(min_length=1, max_length=200)
    reference: str | None = Field(default=None, max_length=200, description="CVE id, scanner or pentest reference.")
    owner: str = Field(min_length=1, max_length=200)
    risk_id: uuid.UUID | None = Field(default=None, description="The register risk it belongs to.")
    found_on: date
    working_days: int | None = Field(
        default=None, ge=1, le=250, description="Fix cycle in working days (default: the configured 15)."
    )
    note: str = Field(default="", max_length=4000)


class FixReport(BaseModel):
    fixed_on: date
    note: str = Field(default="", max_length=4000)


class Acceptance(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class VulnerabilityView(BaseModel):
    id: uuid.UUID
    title: str
    severity: Severity
    system: str
    reference: str | None
    owner: str
    risk_id: uuid.UUID | None
    found_on: date
    working_days: int
    due_on: date
    status: VulnerabilityStatus
    fixed_on: date | None
    fix_working_days: int | None
    overdue: bool = Field(description="Open past its due date, or fixed after it.")
    working_days_left: int | None = Field(description="Working days until the due date while open (0 when due).")
    note: str
    created_by: str
    created_at: datetime


class FixCycleRow(BaseModel):
    severity: str = Field(description="A severity, or `all`.")
    found: int
    fixed: int
    fixed_on_time: int
    fixed_late: int
    open: int
    open_overdue: int
    accepted: int
    on_time_rate: float | None = Field(description="Fixed on time / fixed (null when nothing was fixed).")
    fix_days_p50: float | None
    fix_days_p90: float | None
    fix_days_mean: float | None


class FixCycle(BaseModel):
    period_from: date
    period_to: date
    as_of: date
    target_working_days: int
    rows: list[FixCycleRow]
