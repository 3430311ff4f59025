"""Tables of the identity schema."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.audit import AuditLog
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox

SCHEMA = "identity"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)


audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)


class AccountKind(enum.StrEnum):
    customer = "customer"
    staff = "staff"


class AccountStatus(enum.StrEnum):
    """Stored lifecycle state; "locked" is derived from ``locked_until``."""

    active = "active"
    frozen = "frozen"
    closed = "closed"


def _now() -> Any:
    return func.now()


class Account(Base):
    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.active.value)
    #: Staff log in with a user name; customers with their phone or email.
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    email_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    national_id_index: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    lockout_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: low / normal / high: high-risk accounts get the login restrictions below.
    risk_level: Mapped[str] = mapped_column(String(16), default="normal")
    restrictions: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    home_region: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), onupdate=_now())


class CustomerProfile(Base):
    """What identity keeps of a customer's real-name data: a reference, never the values.

    Name, national ID, phone and email live in one vault record (label ``profile``, subject = the account
    id); identity keeps its id, the ID type and when each contact was verified. Login identifiers are
    found through the blind indexes on ``account``. Staff rows carry no vault record (see ``StaffContact``).
    """

    __tablename__ = "customer_profile"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    id_type: Mapped[str] = mapped_column(String(32))
    vault_record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    phone_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StaffContact(Base):
    """A staff member's work email (the bank's own directory, not customer data), AES-GCM encrypted.

    It stays here rather than in the vault because the first administrator is created by the CLI before
    any other service runs.
    """

    __tablename__ = "staff_contact"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    email_enc: Mapped[bytes] = mapped_column(LargeBinary)


class PasswordHistory(Base):
    __tablename__ = "password_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Session(Base):
    __tablename__ = "session"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amr: Mapped[list[str]] = mapped_column(JSONB)
    acr: Mapped[str] = mapped_column(String(8))
    device_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(64))
    #: Commit order of the revocation, set by a trigger from ``revocation_counter`` (migration 0007): the
    #: revocation feed's cursor.
    revoked_seq: Mapped[int | None] = mapped_column(BigInteger, index=True)


class RevocationCounter(Base):
    """One row: the last revocation number handed out. Its row lock orders revocations by commit."""

    __tablename__ = "revocation_counter"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class RefreshToken(Base):
    """Opaque refresh tokens, stored as SHA-256; a used one presented again revokes its session."""

    __tablename__ = "refresh_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SigningKey(Base):
    """Ed25519 token signing keys; the private half AES-GCM encrypted."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    #: Set when a newer key takes over; the key stays published until ``retires_at``.
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceClient(Base):
    """An OAuth2 client: one of the suite's services (``kind`` service) or a system outside the suite that
    calls it (``kind`` api, e.g. the bank's core system). The secret is stored as an argon2id hash only."""

    __tablename__ = "service_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(JSONB, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    kind: Mapped[str] = mapped_column(String(16), default="service", server_default="service")
    description: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(64))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """The login log: every attempt, kept for the retention in settings (>= 90 days)."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_account_id_occurred_at", "account_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now(), index=True)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: HMAC of the identifier typed in, so attempts on unknown accounts can still be grouped.
    identifier_index: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    device_id: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    method: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    signals: Mapped[list[str]] = mapped_column(JSONB, default=list)
    risk_decision: Mapped[str | None] = mapped_column(String(16))


class LoginChallenge(Base):
    """A login whose password passed and that waits for a second factor or a new password."""

    __tablename__ = "login_challenge"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    #: ``second_factor`` or ``password_change`` (a one-time or expired password must be replaced first).
    purpose: Mapped[str] = mapped_column(String(32), server_default="second_factor")
    #: Methods already passed (for ``password_change``: they make the session once the password is set).
    amr: Mapped[list[str] | None] = mapped_column(JSONB)
    methods: Mapped[list[str]] = mapped_column(JSONB)
    reasons: Mapped[list[str]] = mapped_column(JSONB)
    device_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    webauthn_challenge: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Device(Base):
    __tablename__ = "device"
    __table_args__ = (Index("uq_device_account_id_device_id", "account_id", "device_id", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_ip: Mapped[str | None] = mapped_column(String(64))
    last_region: Mapped[str | None] = mapped_column(String(64))


class TotpCredential(Base):
    __tablename__ = "totp_credential"

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The last accepted time step: a code of this step or earlier is a replay.
    last_used_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class OneTimeCode(Base):
    """SMS/email codes (login, contact verification, step-up, reset): hashed, single use, attempt-limited."""

    __tablename__ = "one_time_code"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryCode(Base):
    __tablename__ = "recovery_code"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebAuthnCredential(Base):
    __tablename__ = "webauthn_credential"

    credential_id: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    #: Attested at registration by an allow-listed hardware authenticator, device-bound, user verified:
    #: an assertion that also verifies the user gives aal3 (issue 13 item 19).
    hardware: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class PendingChallenge(Base):
    """A WebAuthn registration or step-up ceremony in progress (server-side challenge)."""

    __tablename__ = "pending_challenge"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StepUpGrant(Base):
    """A fresh second factor bound to one action of one session, usable once, for minutes."""

    __tablename__ = "step_up_grant"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: For actions bound to a payload (``transfer.large``): the hash of the one payload it covers.
    payload_hash: Mapped[str | None] = mapped_column(String(64))


class Notification(Base):
    """Messages to customers (codes, alerts); the row is the outbox of the notification channel.

    A row names where the recipient is, not who it is: the customer's vault record and field
    (``phone`` / ``email``), read from the vault when the row is delivered; for staff, their
    ``StaffContact``. ``recipient_enc`` is set only for a recipient that exists nowhere else (the
    previous contact after a change) and, in development without a webhook, once delivered to the
    sink (what the stand-in provider received, readable through the development sink).
    """

    __tablename__ = "notification"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    vault_record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    recipient_field: Mapped[str | None] = mapped_column(String(16))
    recipient_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
