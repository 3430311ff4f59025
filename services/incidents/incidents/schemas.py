"""Bodies of the incident API: intake (services, customers, staff), the record, transitions."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.incidents.models import (
    Incident,
    IncidentEvent,
    IncidentReport,
    IncidentSource,
    IncidentState,
    IncidentType,
    Observable,
    RegulatorReport,
)


class ObservableKind(enum.StrEnum):
    ip = "ip"
    device = "device"
    payee = "payee"
    transaction = "transaction"
    account = "account"


class ObservableIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: ObservableKind
    value: str = Field(min_length=1, max_length=500)


class Reference(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=200)


class ReportIn(BaseModel):
    """A report from another service (contract in docs/contracts.md); unknown fields are ignored so a
    sender adding one never gets its deliveries refused."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "source": "risk_decision",
                    "type": "account_takeover",
                    "level": None,
                    "correlation_key": "account:5b1d...",
                    "summary": "transfer scored 93: account frozen",
                    "occurred_at": "2026-12-05T03:00:00Z",
                    "customer_id": None,
                    "account_id": "5b1d...",
                    "staff_id": None,
                    "reference": {"kind": "risk_decision", "id": "9c1e..."},
                    "observables": [{"kind": "ip", "value": "203.0.113.7"}],
                }
            ]
        },
    )

    source: IncidentSource
    type: IncidentType
    level: int | None = Field(default=None, ge=1, le=4)
    correlation_key: str = Field(min_length=1, max_length=200)
    summary: str = Field(min_length=1, max_length=4000)
    occurred_at: datetime
    customer_id: uuid.UUID | None = None
    account_id: str | None = Field(default=None, max_length=64)
    staff_id: uuid.UUID | None = None
    reference: Reference
    observables: list[ObservableIn] = Field(default_factory=list, max_length=200)


class ReportOut(BaseModel):
    incident_id: uuid.UUID
    created: bool


class TakeoverReportIn(BaseModel):
    """A customer says their account was taken over (the account is theirs: the token's subject)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=2000)
    noticed_at: datetime | None = None


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[str] = Field(default_factory=list, max_length=10_000)
    staff: list[str] = Field(default_factory=list, max_length=1000)
    systems: list[str] = Field(default_factory=list, max_length=200)
    records: int = Field(default=0, ge=0)


class StaffOpen(BaseModel):
    """Staff open an incident by hand."""

    model_config = ConfigDict(extra="forbid")

    type: IncidentType
    level: int | None = Field(default=None, ge=1, le=4)
    summary: str = Field(min_length=1, max_length=4000)
    occurred_at: datetime
    cause: str = Field(default="", max_length=4000)
    correlation_key: str | None = Field(default=None, max_length=200)
    customer_id: uuid.UUID | None = None
    account_id: str | None = Field(default=None, max_length=64)
    staff_id: uuid.UUID | None = None
    scope: ScopeIn = Field(default_factory=ScopeIn)
    observables: list[ObservableIn] = Field(default_factory=list, max_length=200)


class IncidentPatch(BaseModel):
    """Fields staff refine after the initial assessment; every change is kept in the timeline."""

    model_config = ConfigDict(extra="forbid")

    level: int | None = Field(default=None, ge=1, le=4)
    cause: str | None = Field(default=None, max_length=4000)
    summary: str | None = Field(default=None, min_length=1, max_length=4000)
    scope: ScopeIn | None = None
    reason: str = Field(min_length=1, max_length=2000)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: IncidentState
    reason: str = Field(min_length=1, max_length=2000)


class IncidentOut(BaseModel):
    id: uuid.UUID
    type: IncidentType
    level: int
    state: IncidentState
    source: IncidentSource
    correlation_key: str
    summary: str
    cause: str
    reporter: str
    reporter_kind: str
    customer_id: uuid.UUID | None
    account_id: str | None
    staff_id: uuid.UUID | None
    scope: dict[str, Any]
    occurred_at: datetime
    discovered_at: datetime
    playbook_version: int | None
    report_count: int
    verified_at: datetime | None
    rejected_at: datetime | None
    contained_at: datetime | None
    eradicated_at: datetime | None
    recovered_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: Incident) -> IncidentOut:
        return cls(
            id=i.id,
            type=IncidentType(i.type),
            level=i.level,
            state=IncidentState(i.state),
            source=IncidentSource(i.source),
            correlation_key=i.correlation_key,
            summary=i.summary,
            cause=i.cause,
            reporter=i.reporter,
            reporter_kind=i.reporter_kind,
            customer_id=i.customer_id,
            account_id=i.account_id,
            staff_id=i.staff_id,
            scope=i.scope,
            occurred_at=i.occurred_at,
            discovered_at=i.discovered_at,
            playbook_version=i.playbook_version,
            report_count=i.report_count,
            verified_at=i.verified_at,
            rejected_at=i.rejected_at,
            contained_at=i.contained_at,
            eradicated_at=i.eradicated_at,
            recovered_at=i.recovered_at,
            closed_at=i.closed_at,
            created_at=i.created_at,
            updated_at=i.updated_at,
        )


class ReportRecordOut(BaseModel):
    id: uuid.UUID
    source: str
    reporter: str
    reporter_kind: str
    summary: str
    level: int | None
    reference_kind: str | None
    reference_id: str | None
    occurred_at: datetime
    received_at: datetime

    @classmethod
    def of(cls, r: IncidentReport) -> ReportRecordOut:
        return cls(
            id=r.id,
            source=r.source,
            reporter=r.reporter,
            reporter_kind=r.reporter_kind,
            summary=r.summary,
            level=r.level,
            reference_kind=r.reference_kind,
            reference_id=r.reference_id,
            occurred_at=r.occurred_at,
            received_at=r.received_at,
        )


class ObservableOut(BaseModel):
    kind: str
    value: str
    added_at: datetime
    added_by: str

    @classmethod
    def of(cls, o: Observable) -> ObservableOut:
        return cls(kind=o.kind, value=o.value, added_at=o.added_at, added_by=o.added_by)


class EventOut(BaseModel):
    at: datetime
    kind: str
    actor: str
    actor_kind: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, e: IncidentEvent) -> EventOut:
        return cls(at=e.at, kind=e.kind, actor=e.actor, actor_kind=e.actor_kind, detail=e.detail)


class IncidentDetail(IncidentOut):
    reports: list[ReportRecordOut]
    observables: list[ObservableOut]


class RegulatorReportOut(BaseModel):
    incident_id: uuid.UUID
    body: dict[str, Any]
    drafted_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None
    submitted_by: str | None
    overdue: bool

    @classmethod
    def of(cls, r: RegulatorReport, now: datetime) -> RegulatorReportOut:
        return cls(
            incident_id=r.incident_id,
            body=r.body,
            drafted_at=r.drafted_at,
            deadline_at=r.deadline_at,
            submitted_at=r.submitted_at,
            submitted_by=r.submitted_by,
            overdue=r.submitted_at is None and now > r.deadline_at,
        )


class LevelCriteria(BaseModel):
    level: int
    criteria: str
