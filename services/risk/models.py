"""Tables of the risk schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
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
