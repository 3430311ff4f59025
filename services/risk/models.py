"""Tables of the risk schema.

Customers are keyed by ``customer_key``: identity's customer id when the caller
knows it, otherwise ``acct:<core account id>``. Risk never reads another schema.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.audit import AuditLog
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox

SCHEMA = "risk"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)


class CustomerProfile(Base):
    """One row per customer: the lock that serialises scoring of one customer, and its risk level."""

    __tablename__ = "customer_profile"

    customer_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(64))
    risk_level: Mapped[str] = mapped_column(String(8), server_default="low")
    risk_level_pushed: Mapped[str | None] = mapped_column(String(8))
    scored: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScoredTransaction(Base):
    """Every scored (or imported) transaction: the idempotency record, the baseline source, the history."""

    __tablename__ = "scored_transaction"
    __table_args__ = (
        Index("ix_scored_transaction_customer_time", "customer_key", "occurred_at"),
        Index("ix_scored_transaction_customer_payee", "customer_key", "payee", "occurred_at"),
        Index("ix_scored_transaction_payee_time", "payee", "occurred_at"),
        Index("ix_scored_transaction_time", "occurred_at"),
    )

    transaction_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_key: Mapped[str] = mapped_column(String(80))
    account_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    payee: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(64))
    #: The core system's transfer.execute approval for this transaction, when it named one.
    approval_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), server_default="scored")  # scored | imported
    score: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    model_version: Mapped[str | None] = mapped_column(String(64))
    ruleset_version: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    label: Mapped[str | None] = mapped_column(String(16))
    labelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    label_source: Mapped[str | None] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoginEvent(Base):
    """Logins identity asked about (place and time: the R-II.2.2 rule reads them)."""

    __tablename__ = "login_event"
    __table_args__ = (Index("ix_login_event_customer_time", "customer_key", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer_key: Mapped[str] = mapped_column(String(80))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    region: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(200))
    signals: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    decision: Mapped[str] = mapped_column(String(16))


class RuleSet(Base):
    """A versioned set of rules; exactly one is live, at most one runs in shadow."""

    __tablename__ = "ruleset"
    __table_args__ = (
        Index("uq_ruleset_live", "state", unique=True, postgresql_where=text("state = 'live'")),
        Index("uq_ruleset_shadow", "shadow", unique=True, postgresql_where=text("shadow")),
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # draft | pending | live | retired | rejected
    shadow: Mapped[bool] = mapped_column(server_default=text("false"))
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    comment: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    approval_id: Mapped[str | None] = mapped_column(String(64))
    activated_by: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ShadowDecision(Base):
    """What a shadow rule set would have decided (recorded, compared, never acted on)."""

    __tablename__ = "shadow_decision"
    __table_args__ = (Index("ix_shadow_decision_version", "ruleset_version", "created_at"),)

    transaction_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ruleset_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    live_decision: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ListEntry(Base):
    """Shared lists (R-IV.2): ip, device, payee, phishing_domain; block or allow; who added what when."""

    __tablename__ = "list_entry"
    __table_args__ = (
        Index(
            "uq_list_entry_active",
            "list",
            "value",
            "verdict",
            unique=True,
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    list: Mapped[str] = mapped_column(String(24))
    value: Mapped[str] = mapped_column(String(300))
    verdict: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    removed_by: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Alert(Base):
    """An alert for analysts (M5.4): classified, graded, queued."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_queue", "status", "grade", "score"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    category: Mapped[str] = mapped_column(String(16))  # behaviour | transaction | account
    grade: Mapped[int] = mapped_column(Integer)  # 1 (critical) .. 4 (low)
    score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), server_default="open")  # open | assigned | resolved
    customer_key: Mapped[str | None] = mapped_column(String(80))
    staff_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(128))
    decision: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    assignee: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertComment(Base):
    __tablename__ = "alert_comment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StaffEvent(Base):
    """Staff behaviour signals from vault and permissions (M2.2)."""

    __tablename__ = "staff_event"
    __table_args__ = (Index("ix_staff_event_staff_time", "staff_id", "kind", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    staff_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    count: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


# --- Model registry (services/risk/learning) ---------------------------------------


class ModelState(StrEnum):
    candidate = "candidate"
    active = "active"
    retired = "retired"


class ModelVersion(Base):
    """A trained model: its file (bytes and SHA-256), how it was trained and how it did on a later window.

    Every replica loads the active version's bytes from here, so all score with the same
    model; at most one version is active (a partial unique index).
    """

    __tablename__ = "model_version"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    number: Mapped[int] = mapped_column(Integer, Identity(), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=ModelState.candidate)
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    model: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    feature_names: Mapped[list[str]] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    train_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    train_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    test_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    test_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approval_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)

    __table_args__ = (
        CheckConstraint("state IN ('candidate', 'active', 'retired')", name="state"),
        Index("model_version_one_active", "state", unique=True, postgresql_where=text("state = 'active'")),
    )

    @property
    def version(self) -> str:
        return f"m{self.number}"


class ModelChange(Base):
    """Each promotion or rollback: which version replaced which, on whose approval."""

    __tablename__ = "model_change"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    from_version: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("model_version.id"), nullable=True)
    to_version: Mapped[uuid.UUID] = mapped_column(ForeignKey("model_version.id"))
    approval_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    approved_by: Mapped[list[str]] = mapped_column(JSONB, default=list)
    executed_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("kind IN ('promotion', 'rollback')", name="kind"),)
