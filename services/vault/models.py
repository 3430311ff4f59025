"""Tables of the vault schema.

Key hierarchy as stored::

    root key (settings / external KMS)          never stored here
      └─ key_version.wrapped_key                 KEK, one row per ring and version
           └─ data_key.wrapped_key               DEK, one per subject and records ring
                └─ record_field.ciphertext       one personal-data value

Transit keys (encryption as a service) are key rings whose versions encrypt
the callers' data directly; the ciphertexts live with the caller.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.audit import AuditLog
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox

SCHEMA = "vault"


class Base(DeclarativeBase):
    """Declared as a class (not built by a function) so mypy accepts it as a base."""

    metadata = make_metadata(SCHEMA)


audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)


def utcnow() -> datetime:
    return datetime.now(UTC)


class KeyRing(Base):
    """A named, versioned key: ``records`` rings wrap data keys, ``transit`` rings encrypt for services."""

    __tablename__ = "key_ring"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    #: The service client that owns a transit key (only it may use it); None for records rings.
    owner: Mapped[str | None] = mapped_column(String(64))
    algorithm: Mapped[str] = mapped_column(String(16))
    current_version: Mapped[int] = mapped_column(Integer)
    min_decryption_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class KeyVersion(Base):
    """One version of a ring's key-encryption key, wrapped by the root key."""

    __tablename__ = "key_version"
    __table_args__ = (UniqueConstraint("key_ring_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    key_ring_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("key_ring.id"))
    version: Mapped[int] = mapped_column(Integer)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    root_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Subject(Base):
    """A customer whose personal data the vault holds (the id is the customer's id)."""

    __tablename__ = "subject"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Set when the subject's data keys were destroyed; the row stays as the shred register.
    shredded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DataKey(Base):
    """A subject's data-encryption key for one records ring, wrapped by a KEK version."""

    __tablename__ = "data_key"
    __table_args__ = (
        UniqueConstraint("subject_id", "key_ring_id"),
        Index("ix_data_key_key_ring_id_kek_version", "key_ring_id", "kek_version"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject.id"))
    key_ring_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("key_ring.id"))
    kek_version: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rewrapped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Record(Base):
    """A personal-data record of a subject; other services keep its token."""

    __tablename__ = "record"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token: Mapped[str] = mapped_column(String(48), unique=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject.id"), index=True)
    #: Null once the subject is shredded (the key row is gone).
    data_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("data_key.id", ondelete="SET NULL"))
    label: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordField(Base):
    """One encrypted value; its associated data binds it to its record and field name."""

    __tablename__ = "record_field"
    __table_args__ = (
        UniqueConstraint("record_id", "name"),
        Index("ix_record_field_name_blind_index", "name", "blind_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("record.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    data_class: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(48), unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: HMAC of the normalised value (indexable types only); cleared on shredding.
    blind_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RewrapJob(Base):
    """Background rewrap of a records ring's data keys to its current version, with progress."""

    __tablename__ = "rewrap_job"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    key_ring_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("key_ring.id"), index=True)
    target_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    started_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class ReadUsage(Base):
    """Records one staff member read in one quota window (masked or unmasked): the per-reader quota."""

    __tablename__ = "read_usage"

    reader: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    records: Mapped[int] = mapped_column(Integer, default=0)


class ReadQuotaAlert(Base):
    """One row per reader and window once risk was told the reader approaches the quota."""

    __tablename__ = "read_quota_alert"

    reader: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    records: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
