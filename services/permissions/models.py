"""Tables of the permissions schema.

Subjects are staff ids (the ``sub`` of identity's tokens) kept as strings:
permissions never reads identity's tables.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
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

SCHEMA = "permissions"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)

SUBJECT_LENGTH = 64


class Effect(enum.StrEnum):
    allow = "allow"
    deny = "deny"


class SubjectStatus(enum.StrEnum):
    active = "active"
    frozen = "frozen"
    closed = "closed"


class ApprovalState(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    expired = "expired"
    executed = "executed"


class Decision(enum.StrEnum):
    approve = "approve"
    reject = "reject"


class ReviewDecision(enum.StrEnum):
    pending = "pending"
    certified = "certified"
    revoked = "revoked"


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class Permission(Base):
    """A resource type and an action, e.g. ``vault:decrypt``."""

    __tablename__ = "permission"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(50))
    action: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text, default="")
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)


class Role(Base):
    """A named set of permissions; ``parent`` is the role whose permissions it inherits."""

    __tablename__ = "role"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("role.id"), nullable=True)
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RolePermission(Base):
    __tablename__ = "role_permission"

    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(ForeignKey("permission.name"), primary_key=True)
    effect: Mapped[str] = mapped_column(String(8), default=Effect.allow)

    __table_args__ = (CheckConstraint("effect IN ('allow', 'deny')", name="effect"),)


class SodRule(Base):
    """Two roles one person must never hold together."""

    __tablename__ = "sod_rule"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    role_a_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"))
    role_b_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("role.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("role_a_id", "role_b_id"),
        CheckConstraint("role_a_id <> role_b_id", name="distinct_roles"),
    )


class Grant(Base):
    """A role held by a staff subject, optionally in one scope and until an expiry."""

    __tablename__ = "role_grant"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("role.id"))
    scope: Mapped[str | None] = mapped_column(String(128), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    approved_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    approval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("approval.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(SUBJECT_LENGTH), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    certified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    certified_by: Mapped[str | None] = mapped_column(String(SUBJECT_LENGTH), nullable=True)

    __table_args__ = (
        Index("ix_role_grant_subject", "subject"),
        # One live grant per (subject, role, scope); a revoked one may be granted again.
        Index(
            "uq_role_grant_live",
            "subject",
            "role_id",
            text("coalesce(scope, '')"),
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )


class SubjectState(Base):
    """Account status of a staff subject as told by identity (and incidents)."""

    __tablename__ = "subject_status"

    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status"),)


class Suspension(Base):
    """High-risk permissions of a subject suspended pending review (M2.2 UBA)."""

    __tablename__ = "suspension"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(SUBJECT_LENGTH), nullable=True)
    lift_approval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("approval.id"), nullable=True)

    __table_args__ = (
        # At most one active suspension per subject: a second report joins the first.
        Index("uq_suspension_active", "subject", unique=True, postgresql_where=text("lifted_at IS NULL")),
    )


class TrainingRecord(Base):
    """A completed security training (M8), valid until ``expires_at``."""

    __tablename__ = "training_record"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), index=True)
    course: Mapped[str] = mapped_column(String(100))
    completed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Approval(Base):
    """A maker-checker approval of one exact payload."""

    __tablename__ = "approval"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    operation: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[Any] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), index=True)
    required_approvals: Mapped[int] = mapped_column(Integer)
    approver_permission: Mapped[str] = mapped_column(String(100))
    approver_role: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: Subjects who may not approve besides the maker (e.g. the grantee of a role).
    excluded_approvers: Mapped[list[str]] = mapped_column(JSONB, default=list)
    state: Mapped[str] = mapped_column(String(16), default=ApprovalState.pending, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    executed_by: Mapped[str | None] = mapped_column(String(SUBJECT_LENGTH), nullable=True)

    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'expired', 'executed')",
            name="state",
        ),
        CheckConstraint("required_approvals >= 1", name="required_approvals"),
    )


class ApprovalDecision(Base):
    __tablename__ = "approval_decision"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    approval_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("approval.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("approval_id", "actor"),
        CheckConstraint("decision IN ('approve', 'reject')", name="decision"),
    )


class ApprovalComment(Base):
    __tablename__ = "approval_comment"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    approval_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("approval.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PolicyVersion(Base):
    """A single-row counter bumped by every change that affects checks.

    Bumping it takes the row lock until commit, so changes commit in version
    order and a reader that has seen version N has seen every change up to N.
    """

    __tablename__ = "policy_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class PolicyChange(Base):
    """What changed at each version: one subject's grants/status, or the model (roles)."""

    __tablename__ = "policy_change"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(SUBJECT_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReviewCampaign(Base):
    """A periodic access review (recertification, M4.2)."""

    __tablename__ = "review_campaign"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ReviewItem(Base):
    """One grant a reviewer (the subject's manager) must certify or revoke."""

    __tablename__ = "review_item"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("review_campaign.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("role_grant.id"))
    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH))
    role_name: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), index=True)
    decision: Mapped[str] = mapped_column(String(16), default=ReviewDecision.pending)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("campaign_id", "grant_id"),
        CheckConstraint("decision IN ('pending', 'certified', 'revoked')", name="decision"),
    )
