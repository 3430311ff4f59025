"""Tables of the incidents schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from kit.audit import AuditLog
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox

SCHEMA = "incidents"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)


# --- governance tables ---
# Owned by the governance half of the service (services/incidents/governance/):
# suite-wide audit verification runs, the risk register, vulnerabilities, audits
# (plans, evidence, findings, remediation, follow-up), sampling runs and
# retention runs. Migration 0100_governance.

import uuid as _uuid  # noqa: E402
from datetime import date as _date  # noqa: E402
from datetime import datetime as _datetime  # noqa: E402
from typing import Any as _Any  # noqa: E402

import sqlalchemy as _sa  # noqa: E402
from sqlalchemy.dialects.postgresql import JSONB as _JSONB  # noqa: E402
from sqlalchemy.orm import Mapped as _Mapped  # noqa: E402
from sqlalchemy.orm import mapped_column as _column  # noqa: E402


def _now_column() -> _Mapped[_datetime]:
    return _column(_sa.DateTime(timezone=True), nullable=False, server_default=_sa.func.now())


class AuditVerificationRun(Base):
    """One suite-wide verification of every service's audit chain (who ran it, what each service answered)."""

    __tablename__ = "audit_verification_run"

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    run_at: _Mapped[_datetime] = _now_column()
    actor: _Mapped[str] = _column(_sa.String(200), nullable=False)
    ok: _Mapped[bool] = _column(_sa.Boolean, nullable=False)
    results: _Mapped[list[dict[str, _Any]]] = _column(_JSONB, nullable=False)


class RegisterRisk(Base):
    """A risk in the register (R-III.1-2): category, likelihood x impact, owner, controls, plan, reviews."""

    __tablename__ = "register_risk"
    __table_args__ = (
        _sa.CheckConstraint("likelihood BETWEEN 1 AND 5", name="likelihood_range"),
        _sa.CheckConstraint("impact BETWEEN 1 AND 5", name="impact_range"),
        _sa.CheckConstraint(
            "category IN ('technical', 'operational', 'customer', 'compliance')", name="category_known"
        ),
    )

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    title: _Mapped[str] = _column(_sa.String(200), nullable=False)
    description: _Mapped[str] = _column(_sa.Text, nullable=False)
    category: _Mapped[str] = _column(_sa.String(16), nullable=False, index=True)
    likelihood: _Mapped[int] = _column(_sa.Integer, nullable=False)
    impact: _Mapped[int] = _column(_sa.Integer, nullable=False)
    owner: _Mapped[str] = _column(_sa.String(200), nullable=False)
    triggers: _Mapped[str] = _column(_sa.Text, nullable=False, default="")
    controls: _Mapped[list[str]] = _column(_JSONB, nullable=False)
    control_target: _Mapped[str] = _column(_sa.Text, nullable=False)
    measures: _Mapped[list[str]] = _column(_JSONB, nullable=False)
    response_flow: _Mapped[str] = _column(_sa.Text, nullable=False)
    verification: _Mapped[str] = _column(_sa.Text, nullable=False)
    status: _Mapped[str] = _column(_sa.String(16), nullable=False, default="open")
    review_interval_days: _Mapped[int] = _column(_sa.Integer, nullable=False)
    last_reviewed_on: _Mapped[_date | None] = _column(_sa.Date, nullable=True)
    next_review_on: _Mapped[_date] = _column(_sa.Date, nullable=False, index=True)
    created_by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    created_at: _Mapped[_datetime] = _now_column()
    updated_at: _Mapped[_datetime] = _now_column()


class RegisterReview(Base):
    """A review of a register risk: who, when, the assessment then, and a note."""

    __tablename__ = "register_review"

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    risk_id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, _sa.ForeignKey("register_risk.id"), nullable=False, index=True)
    reviewed_on: _Mapped[_date] = _column(_sa.Date, nullable=False)
    reviewer: _Mapped[str] = _column(_sa.String(200), nullable=False)
    likelihood: _Mapped[int] = _column(_sa.Integer, nullable=False)
    impact: _Mapped[int] = _column(_sa.Integer, nullable=False)
    note: _Mapped[str] = _column(_sa.Text, nullable=False)
    created_at: _Mapped[_datetime] = _now_column()


class Vulnerability(Base):
    """A vulnerability and its fix cycle: due on a working day of the mainland calendar."""

    __tablename__ = "vulnerability"
    __table_args__ = (
        _sa.CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="severity_known"),
        _sa.CheckConstraint("status IN ('open', 'fixed', 'accepted')", name="status_known"),
    )

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    title: _Mapped[str] = _column(_sa.String(200), nullable=False)
    severity: _Mapped[str] = _column(_sa.String(16), nullable=False)
    system: _Mapped[str] = _column(_sa.String(200), nullable=False)
    reference: _Mapped[str | None] = _column(_sa.String(200), nullable=True)
    owner: _Mapped[str] = _column(_sa.String(200), nullable=False)
    risk_id: _Mapped[_uuid.UUID | None] = _column(_sa.Uuid, _sa.ForeignKey("register_risk.id"), nullable=True)
    found_on: _Mapped[_date] = _column(_sa.Date, nullable=False, index=True)
    working_days: _Mapped[int] = _column(_sa.Integer, nullable=False)
    due_on: _Mapped[_date] = _column(_sa.Date, nullable=False, index=True)
    status: _Mapped[str] = _column(_sa.String(16), nullable=False, default="open")
    fixed_on: _Mapped[_date | None] = _column(_sa.Date, nullable=True)
    fix_working_days: _Mapped[int | None] = _column(_sa.Integer, nullable=True)
    note: _Mapped[str] = _column(_sa.Text, nullable=False, default="")
    created_by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    created_at: _Mapped[_datetime] = _now_column()


class AuditPlan(Base):
    """An audit (M7): scope, period, auditors, criteria, and its state."""

    __tablename__ = "audit_plan"
    __table_args__ = (
        _sa.CheckConstraint("period_from <= period_to", name="period_ordered"),
        _sa.CheckConstraint("status IN ('planned', 'fieldwork', 'reported', 'closed')", name="status_known"),
    )

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    title: _Mapped[str] = _column(_sa.String(200), nullable=False)
    scope: _Mapped[str] = _column(_sa.Text, nullable=False)
    period_from: _Mapped[_date] = _column(_sa.Date, nullable=False)
    period_to: _Mapped[_date] = _column(_sa.Date, nullable=False)
    auditors: _Mapped[list[str]] = _column(_JSONB, nullable=False)
    criteria: _Mapped[list[str]] = _column(_JSONB, nullable=False)
    status: _Mapped[str] = _column(_sa.String(16), nullable=False, default="planned")
    conclusion: _Mapped[str | None] = _column(_sa.Text, nullable=True)
    created_by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    created_at: _Mapped[_datetime] = _now_column()


class AuditEvidence(Base):
    """Evidence of an audit: audit chain entries of a service, an export of a service's log, or a document."""

    __tablename__ = "audit_evidence"
    __table_args__ = (
        _sa.CheckConstraint("kind IN ('audit_chain', 'log_export', 'document', 'sampling_run')", name="kind_known"),
    )

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    audit_id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, _sa.ForeignKey("audit_plan.id"), nullable=False, index=True)
    kind: _Mapped[str] = _column(_sa.String(16), nullable=False)
    service: _Mapped[str | None] = _column(_sa.String(32), nullable=True)
    seq_from: _Mapped[int | None] = _column(_sa.BigInteger, nullable=True)
    seq_to: _Mapped[int | None] = _column(_sa.BigInteger, nullable=True)
    uri: _Mapped[str | None] = _column(_sa.String(500), nullable=True)
    sha256: _Mapped[str | None] = _column(_sa.String(64), nullable=True)
    description: _Mapped[str] = _column(_sa.Text, nullable=False)
    added_by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    added_at: _Mapped[_datetime] = _now_column()


class AuditFinding(Base):
    """A finding with its risk rating and recommendation; sampling jobs create them with a dedupe key."""

    __tablename__ = "audit_finding"
    __table_args__ = (
        _sa.CheckConstraint("rating IN ('low', 'medium', 'high', 'critical')", name="rating_known"),
        _sa.CheckConstraint("status IN ('open', 'remediating', 'closed')", name="status_known"),
        _sa.UniqueConstraint("audit_id", "dedupe_key"),
    )

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    audit_id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, _sa.ForeignKey("audit_plan.id"), nullable=False, index=True)
    title: _Mapped[str] = _column(_sa.String(200), nullable=False)
    description: _Mapped[str] = _column(_sa.Text, nullable=False)
    rating: _Mapped[str] = _column(_sa.String(16), nullable=False)
    recommendation: _Mapped[str] = _column(_sa.Text, nullable=False)
    source: _Mapped[str] = _column(_sa.String(64), nullable=False, default="manual")
    dedupe_key: _Mapped[str | None] = _column(_sa.String(200), nullable=True)
    detail: _Mapped[dict[str, _Any]] = _column(_JSONB, nullable=False, default=dict)
    status: _Mapped[str] = _column(_sa.String(16), nullable=False, default="open")
    created_by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    created_at: _Mapped[_datetime] = _now_column()


class AuditRemediation(Base):
    """A remediation action for a finding: owner, due date, and its state."""

    __tablename__ = "audit_remediation"
    __table_args__ = (_sa.CheckConstraint("status IN ('open', 'done', 'verified')", name="status_known"),)

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    finding_id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, _sa.ForeignKey("audit_finding.id"), nullable=False, index=True)
    action: _Mapped[str] = _column(_sa.Text, nullable=False)
    owner: _Mapped[str] = _column(_sa.String(200), nullable=False)
    due_on: _Mapped[_date] = _column(_sa.Date, nullable=False)
    status: _Mapped[str] = _column(_sa.String(16), nullable=False, default="open")
    completed_on: _Mapped[_date | None] = _column(_sa.Date, nullable=True)
    created_by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    created_at: _Mapped[_datetime] = _now_column()


class AuditFollowUp(Base):
    """A follow-up on a remediation: what was checked, by whom, and the state it moved to."""

    __tablename__ = "audit_follow_up"

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    remediation_id: _Mapped[_uuid.UUID] = _column(
        _sa.Uuid, _sa.ForeignKey("audit_remediation.id"), nullable=False, index=True
    )
    note: _Mapped[str] = _column(_sa.Text, nullable=False)
    status: _Mapped[str] = _column(_sa.String(16), nullable=False)
    by: _Mapped[str] = _column(_sa.String(200), nullable=False)
    at: _Mapped[_datetime] = _now_column()


class SamplingRun(Base):
    """One run of a sampling audit over a period: how much was sampled and how many exceptions it found."""

    __tablename__ = "sampling_run"

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    audit_id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, _sa.ForeignKey("audit_plan.id"), nullable=False, index=True)
    check: _Mapped[str] = _column(_sa.String(64), nullable=False)
    period_from: _Mapped[_datetime] = _column(_sa.DateTime(timezone=True), nullable=False)
    period_to: _Mapped[_datetime] = _column(_sa.DateTime(timezone=True), nullable=False)
    sampled: _Mapped[int] = _column(_sa.Integer, nullable=False)
    exceptions: _Mapped[int] = _column(_sa.Integer, nullable=False)
    actor: _Mapped[str] = _column(_sa.String(200), nullable=False)
    run_at: _Mapped[_datetime] = _now_column()


class RetentionRun(Base):
    """One purge of a data set: the cutoff, the archive written before it, and the rows removed."""

    __tablename__ = "retention_run"

    id: _Mapped[_uuid.UUID] = _column(_sa.Uuid, primary_key=True, default=_uuid.uuid4)
    dataset: _Mapped[str] = _column(_sa.String(64), nullable=False)
    cutoff: _Mapped[_datetime] = _column(_sa.DateTime(timezone=True), nullable=False)
    archived: _Mapped[int] = _column(_sa.Integer, nullable=False)
    purged: _Mapped[int] = _column(_sa.Integer, nullable=False)
    archive_path: _Mapped[str | None] = _column(_sa.String(500), nullable=True)
    archive_sha256: _Mapped[str | None] = _column(_sa.String(64), nullable=True)
    actor: _Mapped[str] = _column(_sa.String(200), nullable=False)
    run_at: _Mapped[_datetime] = _now_column()
