"""Tables of the incidents schema.

Customers, accounts and staff are ids from identity's tokens (kept as
strings or UUIDs): incidents never reads another service's tables.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.audit import AuditLog
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox

SCHEMA = "incidents"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)

ACTOR_LENGTH = 64


class IncidentType(enum.StrEnum):
    account_takeover = "account_takeover"
    login_anomaly = "login_anomaly"
    fraudulent_transaction = "fraudulent_transaction"
    intrusion = "intrusion"
    data_leak = "data_leak"
    tampering = "tampering"
    insider_misuse = "insider_misuse"
    denial_of_service = "denial_of_service"
    other = "other"


class IncidentSource(enum.StrEnum):
    risk_decision = "risk_decision"
    risk_alert = "risk_alert"
    identity_signal = "identity_signal"
    staff_report = "staff_report"
    customer_report = "customer_report"


class IncidentState(enum.StrEnum):
    reported = "reported"
    verified = "verified"
    rejected = "rejected"
    contained = "contained"
    eradicated = "eradicated"
    recovered = "recovered"
    closed = "closed"


#: States an incident is still open in (reports with its type and correlation key attach to it).
OPEN_STATES = (
    IncidentState.reported,
    IncidentState.verified,
    IncidentState.contained,
    IncidentState.eradicated,
    IncidentState.recovered,
)


class StepMode(enum.StrEnum):
    automatic = "automatic"
    manual = "manual"


class StepStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"


class ClockKind(enum.StrEnum):
    verify = "verify"
    freeze = "freeze"
    acknowledge = "acknowledge"
    resolve = "resolve"


class TeamRole(enum.StrEnum):
    incident_commander = "incident_commander"
    investigator = "investigator"
    communications = "communications"
    approver = "approver"


class RotaTier(enum.StrEnum):
    primary = "primary"
    secondary = "secondary"
    manager = "manager"


class ResponsibilityKind(enum.StrEnum):
    technical = "technical"
    management = "management"
    personal = "personal"


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class Incident(Base):
    """One security incident: the fixed fields of M6.1-6.2, its state and its scope."""

    __tablename__ = "incident"
    __table_args__ = (
        # One open incident per type and correlation key: a wave of reports is one incident.
        Index(
            "uq_incident_open_correlation",
            "type",
            "correlation_key",
            unique=True,
            postgresql_where=text("state NOT IN ('closed', 'rejected')"),
        ),
        Index("ix_incident_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    type: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(16), default=IncidentState.reported.value)
    source: Mapped[str] = mapped_column(String(32))
    correlation_key: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(Text, default="")
    reporter: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    reporter_kind: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    account_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    staff_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    #: Scope: {"accounts": [...], "staff": [...], "systems": [...], "records": n}.
    scope: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    discovered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    playbook_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    playbook_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rejected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    contained_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    eradicated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recovered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IncidentReport(Base):
    """Every report that opened or joined an incident (nothing lost)."""

    __tablename__ = "incident_report"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    reporter: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    reporter_kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    summary: Mapped[str] = mapped_column(Text)
    level: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    reference_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reference_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Observable(Base):
    """An indicator attached to an incident (IP, device, payee, transaction, account)."""

    __tablename__ = "observable"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "value"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(500))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))


class IncidentEvent(Base):
    """The incident's timeline: every transition, report, step outcome, assignment, breach."""

    __tablename__ = "incident_event"
    __table_args__ = (Index("ix_incident_event_incident_at", "incident_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    #: Insertion order (several events of one transaction share their time).
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    actor_kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Playbook(Base):
    """One version of the playbook of an incident type; steps are data, changed only by approval."""

    __tablename__ = "playbook"
    __table_args__ = (
        UniqueConstraint("type", "version"),
        Index("uq_playbook_active", "type", unique=True, postgresql_where=text("active")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    type: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    approval_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StepRun(Base):
    """One step of an incident's playbook as it runs: durable, so a restart loses and repeats nothing."""

    __tablename__ = "step_run"
    __table_args__ = (
        UniqueConstraint("incident_id", "position"),
        Index("ix_step_run_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    blocking: Mapped[bool] = mapped_column(Boolean)
    phase: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    checklist: Mapped[list[str]] = mapped_column(JSONB, default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.pending.value)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    #: Idempotency keys of the outbox messages of the current attempt.
    outbox_keys: Mapped[list[str]] = mapped_column(JSONB, default=list)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class RegulatorReport(Base):
    """The draft report to the regulator of a level 1-2 incident, with its deadline."""

    __tablename__ = "regulator_report"

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    drafted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    submitted_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), nullable=True)


class SlaClock(Base):
    """A durable deadline (a timestamp, not a timer): survives restarts and failovers."""

    __tablename__ = "sla_clock"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind"),
        Index("ix_sla_clock_running", "due_at", postgresql_where=text("met_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    target_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the clock "nears" its deadline (the next person is told); moves with pauses like due_at.
    warn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    met_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pause_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Escalation(Base):
    """Someone to be told: a clock nearing or breaching, a report up the chain, an overdue action.

    identity notifies customers only, so staff escalations are recorded here and
    served as each person's queue (`GET staff/escalations`).
    """

    __tablename__ = "escalation"
    __table_args__ = (
        Index("ix_escalation_recipient_open", "recipient", postgresql_where=text("acknowledged_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject_ref: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), nullable=True)
    recipient_role: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), nullable=True)


class Assignment(Base):
    """A member of an incident's response team in a role; a hand-over releases one and adds another."""

    __tablename__ = "assignment"
    __table_args__ = (
        Index(
            "uq_assignment_active_role",
            "incident_id",
            "role",
            unique=True,
            postgresql_where=text("released_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    handover_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class OnCallShift(Base):
    """The on-call rota: who answers (primary), who is next (secondary), and the manager above them."""

    __tablename__ = "oncall_shift"
    __table_args__ = (Index("ix_oncall_shift_window", "tier", "starts_at", "ends_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    tier: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    handover_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))


class ChainReport(Base):
    """Reporting up the chain (M6.2): who must be told of an incident of this level, by when."""

    __tablename__ = "chain_report"
    __table_args__ = (UniqueConstraint("incident_id", "audience"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reported_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), nullable=True)
    overdue_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PostMortem(Base):
    """The review after the incident (M6.4)."""

    __tablename__ = "postmortem"

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), primary_key=True)
    root_cause: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[str] = mapped_column(Text, default="")
    went_well: Mapped[str] = mapped_column(Text, default="")
    went_badly: Mapped[str] = mapped_column(Text, default="")
    lessons: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CorrectiveAction(Base):
    """A corrective action with its owner and due date, tracked to closure (overdue ones escalate)."""

    __tablename__ = "corrective_action"
    __table_args__ = (Index("ix_corrective_action_open_due", "due_at", postgresql_where=text("closed_at IS NULL")),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    owner: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Accountability(Base):
    """Responsibility (M6.5): technical, management or personal, with the decision and who took it."""

    __tablename__ = "accountability"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    responsible: Mapped[str] = mapped_column(String(200))
    finding: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- governance tables ---
# Owned by the governance half of the service (services/incidents/governance/):
# suite-wide audit verification runs, the risk register, vulnerabilities, audits
# (plans, evidence, findings, remediation, follow-up), sampling runs and
# retention runs. Migration 0100_governance.


def _nowmapped_column() -> Mapped[datetime]:
    return mapped_column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


class AuditVerificationRun(Base):
    """One suite-wide verification of every service's audit chain (who ran it, what each service answered)."""

    __tablename__ = "audit_verification_run"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    run_at: Mapped[datetime] = _nowmapped_column()
    actor: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    ok: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)


class RegisterRisk(Base):
    """A risk in the register (R-III.1-2): category, likelihood x impact, owner, controls, plan, reviews."""

    __tablename__ = "register_risk"
    __table_args__ = (
        sa.CheckConstraint("likelihood BETWEEN 1 AND 5", name="likelihood_range"),
        sa.CheckConstraint("impact BETWEEN 1 AND 5", name="impact_range"),
        sa.CheckConstraint("category IN ('technical', 'operational', 'customer', 'compliance')", name="category_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False)
    category: Mapped[str] = mapped_column(sa.String(16), nullable=False, index=True)
    likelihood: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    impact: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    owner: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    triggers: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    controls: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    control_target: Mapped[str] = mapped_column(sa.Text, nullable=False)
    measures: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    response_flow: Mapped[str] = mapped_column(sa.Text, nullable=False)
    verification: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="open")
    review_interval_days: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    last_reviewed_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    next_review_on: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    created_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at: Mapped[datetime] = _nowmapped_column()
    updated_at: Mapped[datetime] = _nowmapped_column()


class RegisterReview(Base):
    """A review of a register risk: who, when, the assessment then, and a note."""

    __tablename__ = "register_review"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    risk_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("register_risk.id"), nullable=False, index=True)
    reviewed_on: Mapped[date] = mapped_column(sa.Date, nullable=False)
    reviewer: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    likelihood: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    impact: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    note: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime] = _nowmapped_column()


class Vulnerability(Base):
    """A vulnerability and its fix cycle: due on a working day of the mainland calendar."""

    __tablename__ = "vulnerability"
    __table_args__ = (
        sa.CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name="severity_known"),
        sa.CheckConstraint("status IN ('open', 'fixed', 'accepted')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    severity: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    system: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    reference: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    owner: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    risk_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, sa.ForeignKey("register_risk.id"), nullable=True)
    found_on: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    working_days: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    due_on: Mapped[date] = mapped_column(sa.Date, nullable=False, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="open")
    fixed_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    fix_working_days: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    note: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    created_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at: Mapped[datetime] = _nowmapped_column()


class AuditPlan(Base):
    """An audit (M7): scope, period, auditors, criteria, and its state."""

    __tablename__ = "audit_plan"
    __table_args__ = (
        sa.CheckConstraint("period_from <= period_to", name="period_ordered"),
        sa.CheckConstraint("status IN ('planned', 'fieldwork', 'reported', 'closed')", name="status_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    scope: Mapped[str] = mapped_column(sa.Text, nullable=False)
    period_from: Mapped[date] = mapped_column(sa.Date, nullable=False)
    period_to: Mapped[date] = mapped_column(sa.Date, nullable=False)
    auditors: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    criteria: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="planned")
    conclusion: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at: Mapped[datetime] = _nowmapped_column()


class AuditEvidence(Base):
    """Evidence of an audit: audit chain entries of a service, an export of a service's log, or a document."""

    __tablename__ = "audit_evidence"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('audit_chain', 'log_export', 'document', 'sampling_run')", name="kind_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    audit_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("audit_plan.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    service: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    seq_from: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    seq_to: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    uri: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    sha256: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False)
    added_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    added_at: Mapped[datetime] = _nowmapped_column()


class AuditFinding(Base):
    """A finding with its risk rating and recommendation; sampling jobs create them with a dedupe key."""

    __tablename__ = "audit_finding"
    __table_args__ = (
        sa.CheckConstraint("rating IN ('low', 'medium', 'high', 'critical')", name="rating_known"),
        sa.CheckConstraint("status IN ('open', 'remediating', 'closed')", name="status_known"),
        sa.UniqueConstraint("audit_id", "dedupe_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    audit_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("audit_plan.id"), nullable=False, index=True)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False)
    rating: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    recommendation: Mapped[str] = mapped_column(sa.Text, nullable=False)
    source: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="manual")
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="open")
    created_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at: Mapped[datetime] = _nowmapped_column()


class AuditRemediation(Base):
    """A remediation action for a finding: owner, due date, and its state."""

    __tablename__ = "audit_remediation"
    __table_args__ = (sa.CheckConstraint("status IN ('open', 'done', 'verified')", name="status_known"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    finding_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("audit_finding.id"), nullable=False, index=True
    )
    action: Mapped[str] = mapped_column(sa.Text, nullable=False)
    owner: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    due_on: Mapped[date] = mapped_column(sa.Date, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="open")
    completed_on: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at: Mapped[datetime] = _nowmapped_column()


class AuditFollowUp(Base):
    """A follow-up on a remediation: what was checked, by whom, and the state it moved to."""

    __tablename__ = "audit_follow_up"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    remediation_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("audit_remediation.id"), nullable=False, index=True
    )
    note: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    by: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    at: Mapped[datetime] = _nowmapped_column()


class SamplingRun(Base):
    """One run of a sampling audit over a period: how much was sampled and how many exceptions it found."""

    __tablename__ = "sampling_run"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    audit_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("audit_plan.id"), nullable=False, index=True)
    check: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    period_from: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    period_to: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    sampled: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    exceptions: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    actor: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    run_at: Mapped[datetime] = _nowmapped_column()


class RetentionRun(Base):
    """One purge of a data set: the cutoff, the archive written before it, and the rows removed."""

    __tablename__ = "retention_run"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    dataset: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    cutoff: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), nullable=False)
    archived: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    purged: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    archive_path: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    archive_sha256: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    actor: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    run_at: Mapped[datetime] = _nowmapped_column()
