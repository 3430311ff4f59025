"""Shapes of audits (M7): plans, evidence, findings, remediation, follow-up, the report."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Self

from pydantic import BaseModel, Field, model_validator

SHA256_HEX = r"^[0-9a-f]{64}$"
MAX_EXPORT_ENTRIES = 50_000


class AuditStatus(enum.StrEnum):
    planned = "planned"
    fieldwork = "fieldwork"
    reported = "reported"
    closed = "closed"


class EvidenceKind(enum.StrEnum):
    audit_chain = "audit_chain"
    log_export = "log_export"
    document = "document"
    sampling_run = "sampling_run"


class SuiteService(enum.StrEnum):
    identity = "identity"
    permissions = "permissions"
    vault = "vault"
    risk = "risk"
    incidents = "incidents"


class Rating(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class FindingStatus(enum.StrEnum):
    open = "open"
    remediating = "remediating"
    closed = "closed"


class RemediationStatus(enum.StrEnum):
    open = "open"
    done = "done"
    verified = "verified"


class AuditCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    scope: str = Field(min_length=1, max_length=4000)
    period_from: date
    period_to: date
    auditors: list[str] = Field(min_length=1, max_length=20, description="Staff ids or names of the auditors.")
    criteria: list[str] = Field(min_length=1, max_length=50, description="What is audited against.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.period_from > self.period_to:
            raise ValueError("period_from is after period_to")
        return self


class StatusChange(BaseModel):
    status: AuditStatus
    conclusion: str | None = Field(default=None, max_length=8000)


class AuditView(BaseModel):
    id: uuid.UUID
    title: str
    scope: str
    period_from: date
    period_to: date
    auditors: list[str]
    criteria: list[str]
    status: AuditStatus
    conclusion: str | None
    created_by: str
    created_at: datetime


class EvidenceCreate(BaseModel):
    kind: EvidenceKind
    description: str = Field(min_length=1, max_length=4000)
    service: SuiteService | None = None
    seq_from: int | None = Field(default=None, ge=1)
    seq_to: int | None = Field(default=None, ge=1)
    uri: str | None = Field(default=None, min_length=1, max_length=500, description="Where the export is kept.")
    sha256: str | None = Field(default=None, pattern=SHA256_HEX, description="Digest of the exported file.")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.kind == EvidenceKind.sampling_run:
            raise ValueError("sampling-run evidence is added by the sampling jobs")
        if self.kind == EvidenceKind.audit_chain:
            if self.service is None or self.seq_from is None or self.seq_to is None:
                raise ValueError("audit-chain evidence names the service and the entries (seq_from, seq_to)")
            if self.seq_from > self.seq_to:
                raise ValueError("seq_from is after seq_to")
        if self.kind == EvidenceKind.log_export and (self.service is None or self.uri is None or self.sha256 is None):
            raise ValueError("a log export names the service, where it is kept (uri) and its sha256")
        if self.kind == EvidenceKind.document and self.uri is None:
            raise ValueError("a document names where it is kept (uri)")
        return self


class ChainExportCreate(BaseModel):
    """Export a range of a service's audit-chain entries (through the gateway) as evidence."""

    service: SuiteService
    seq_from: int = Field(ge=1)
    seq_to: int = Field(ge=1)
    description: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.seq_from > self.seq_to:
            raise ValueError("seq_from is after seq_to")
        if self.seq_to - self.seq_from >= MAX_EXPORT_ENTRIES:
            raise ValueError(f"one export holds at most {MAX_EXPORT_ENTRIES} entries")
        return self


class EvidenceView(BaseModel):
    id: uuid.UUID
    kind: EvidenceKind
    service: str | None
    seq_from: int | None
    seq_to: int | None
    uri: str | None
    sha256: str | None
    description: str
    added_by: str
    added_at: datetime


class FindingCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=8000)
    rating: Rating
    recommendation: str = Field(min_length=1, max_length=8000)


class RemediationCreate(BaseModel):
    action: str = Field(min_length=1, max_length=4000)
    owner: str = Field(min_length=1, max_length=200)
    due_on: date


class FollowUpCreate(BaseModel):
    note: str = Field(min_length=1, max_length=4000)
    status: RemediationStatus


class FollowUpView(BaseModel):
    id: uuid.UUID
    note: str
    status: RemediationStatus
    by: str
    at: datetime


class RemediationView(BaseModel):
    id: uuid.UUID
    finding_id: uuid.UUID
    action: str
    owner: str
    due_on: date
    status: RemediationStatus
    completed_on: date | None
    overdue: bool
    follow_ups: list[FollowUpView]


class FindingView(BaseModel):
    id: uuid.UUID
    audit_id: uuid.UUID
    title: str
    description: str
    rating: Rating
    recommendation: str
    source: str
    detail: dict[str, object]
    status: FindingStatus
    created_by: str
    created_at: datetime
    remediations: list[RemediationView]


class LatestChainCheck(BaseModel):
    service: str
    status: str
    verified_at: datetime | None
    first_bad_seq: int | None


class AuditReport(BaseModel):
    audit: AuditView
    generated_at: datetime
    as_of: date
    evidence: list[EvidenceView]
    findings: list[FindingView]
    findings_by_rating: dict[str, int]
    overdue_remediations: int
    chains: list[LatestChainCheck] = Field(description="The latest suite-wide verification, for audit-chain evidence.")
