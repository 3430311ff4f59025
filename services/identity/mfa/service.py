"""Second factors: TOTP, SMS/email one-time codes, recovery codes, WebAuthn, and step-up grants."""

from __future__ import annotations

import base64
import hmac
import io
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import segno
from sqlalchemy import ColumnElement, SQLColumnExpression, Uuid, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.crypto import token_hash
from services.identity.errors import FactorNotAvailable, InvalidCode, StepUpRequired, TooManyAttempts
from services.identity.models import (
    Account,
    OneTimeCode,
    PendingChallenge,
    RecoveryCode,
    StepUpGrant,
    TotpCredential,
    WebAuthnCredential,
)
from services.identity.notifications.service import notify_account
from services.identity.runtime import Runtime

TOTP_PERIOD = 30


def _totp_context(account_id: uuid.UUID) -> str:
    return f"totp:{account_id}"


# --- TOTP -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg_data_uri: str


async def start_totp(session: AsyncSession, runtime: Runtime, account: Account, label: str) -> TotpEnrolment:
    """A new unconfirmed secret (replacing an unconfirmed one); a confirmed one must be removed first."""
    existing = await session.get(TotpCredential, account.id, with_for_update=True)
    if existing is not None and existing.confirmed_at is not None:
        raise FactorNotAvailable("an authenticator app is already enrolled; remove it first")
    secret = pyotp.random_base32(32)
    encrypted = runtime.keyring.totp.encrypt_text(secret, _totp_context(account.id))
    if existing is None:
        session.add(TotpCredential(account_id=account.id, secret_enc=encrypted, last_used_step=0))
    else:
        existing.secret_enc, existing.last_used_step = encrypted, 0
    await session.flush()
    uri = pyotp.TOTP(secret, interval=TOTP_PERIOD).provisioning_uri(
        name=label, issuer_name=runtime.settings.totp_issuer
    )
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4)
    qr = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg_data_uri=qr)


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (current one, or one step either side) whose code equals ``code``."""
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    current = int(now // TOTP_PERIOD)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_PERIOD), code):
            return step
    return None


async def verify_totp(
    session: AsyncSession, runtime: Runtime, account_id: uuid.UUID, code: str, *, confirming: bool = False
) -> bool:
    """True once per code: a code whose step is not after the last accepted one is a replay.

    The step is advanced with a conditional UPDATE, so two concurrent requests
    with the same code cannot both succeed.
    """
    credential = await session.get(TotpCredential, account_id)
    if credential is None or (credential.confirmed_at is None) != confirming:
        return False
    secret = runtime.keyring.totp.decrypt_text(credential.secret_enc, _totp_context(account_id))
    step = _matching_step(secret, code.strip(), time.time())
    if step is None:
        return False
    values: dict[str, Any] = {"last_used_step": step}
    if confirming:
        values["confirmed_at"] = datetime.now(UTC)
    advanced = await session.execute(
        update(TotpCredential)
        .where(TotpCredential.account_id == account_id, TotpCredential.last_used_step < step)
        .values(**values)
        .returning(TotpCredential.account_id)
    )
    ok = advanced.first() is not None
    if confirming:
        await session.refresh(credential)  # the enrolment answer shows when it was confirmed
    else:
        # The UPDATE went around the ORM: drop the stale copy rather than read it back.
        session.expunge(credential)
    return ok


async def remove_totp(session: AsyncSession, account_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(TotpCredential).where(TotpCredential.account_id == account_id).returning(TotpCredential.account_id)
    )
    return result.first() is not None


# --- one-time codes (SMS / email) ---------------------------------------------


def _code_hash(runtime: Runtime, code_id: uuid.UUID, code: str) -> str:
    # Keyed: a six-digit code is guessable offline from a plain hash.
    return runtime.keyring.index(f"otp:{code_id}", code)


async def send_code(
    session: AsyncSession, runtime: Runtime, account: Account, *, purpose: str, channel: str
) -> uuid.UUID:
    """Send a fresh code (earlier unused codes for the same purpose stop working)."""
    if channel not in ("sms", "email"):
        raise FactorNotAvailable("codes go by sms or email")
    settings = runtime.settings
    now = datetime.now(UTC)
    await session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.account_id == account.id, OneTimeCode.purpose == purpose, OneTimeCode.used_at.is_(None))
        .values(used_at=now)
    )
    code = "".join(secrets.choice("0123456789") for _ in range(settings.otp_length))
    code_id = uuid.uuid4()
    session.add(
        OneTimeCode(
            id=code_id,
            account_id=account.id,
            purpose=purpose,
            channel=channel,
            code_hash=_code_hash(runtime, code_id, code),
            attempts=0,
            expires_at=now + timedelta(seconds=settings.otp_ttl_seconds),
        )
    )
    await session.flush()
    minutes = settings.otp_ttl_seconds // 60
    sent = await notify_account(
        session,
        runtime,
        account,
        channel=channel,
        template=f"code.{purpose}",
        body=f"Your Bank Suite code is {code}. It expires in {minutes} minutes. Never share it.",
    )
    if sent is None:
        raise FactorNotAvailable(f"the account has no {channel} contact")
    return code_id


async def verify_code(session: AsyncSession, runtime: Runtime, account_id: uuid.UUID, purpose: str, code: str) -> str:
    """Check the latest live code for ``purpose``; returns its channel. Attempts are limited.

    Raises on failure; the attempt counter is written before, so callers that
    commit failures (see ``keep_failures``) make the limit stick.
    """
    now = datetime.now(UTC)
    row = await session.scalar(
        select(OneTimeCode)
        .where(
            OneTimeCode.account_id == account_id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.used_at.is_(None),
            OneTimeCode.expires_at > now,
        )
        .order_by(OneTimeCode.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    if row is None:
        raise InvalidCode()
    row.attempts += 1
    if row.attempts > runtime.settings.otp_max_attempts:
        row.used_at = now
        await session.flush()
        raise TooManyAttempts("too many wrong codes; ask for a new one")
    if not hmac.compare_digest(row.code_hash, _code_hash(runtime, row.id, code.strip())):
        await session.flush()
        raise InvalidCode()
    row.used_at = now
    await session.flush()
    return row.channel


# --- recovery codes ---------------------------------------------------------------


def _format_recovery(raw: str) -> str:
    return f"{raw[:5]}-{raw[5:]}"


async def new_recovery_codes(session: AsyncSession, runtime: Runtime, account_id: uuid.UUID) -> list[str]:
    """Replace every recovery code; the new ones are returned once and stored hashed."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = [
        _format_recovery("".join(secrets.choice(alphabet) for _ in range(10)))
        for _ in range(runtime.settings.recovery_code_count)
    ]
    for code in codes:
        session.add(RecoveryCode(account_id=account_id, code_hash=token_hash(code)))
    await session.flush()
    return codes


async def has_recovery_codes(session: AsyncSession, account_id: uuid.UUID) -> bool:
    count = await session.scalar(
        select(func.count()).where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
    )
    return bool(count)


async def use_recovery_code(session: AsyncSession, account_id: uuid.UUID, code: str) -> bool:
    normalised = code.strip().lower().replace(" ", "")
    if len(normalised) == 10:
        normalised = _format_recovery(normalised)
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account_id,
            RecoveryCode.code_hash == token_hash(normalised),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
        .returning(RecoveryCode.id)
    )
    return result.first() is not None


# --- which factors an account has ----------------------------------------------------


#: Which stored factors an account has, in one round trip (built once: it keeps its cache key).
_STORED_FACTORS = select(
    exists().where(WebAuthnCredential.account_id == bindparam("account_id", type_=Uuid())).label("webauthn"),
    exists()
    .where(TotpCredential.account_id == bindparam("account_id"), TotpCredential.confirmed_at.is_not(None))
    .label("otp"),
    exists()
    .where(RecoveryCode.account_id == bindparam("account_id"), RecoveryCode.used_at.is_(None))
    .label("recovery"),
)


async def available_factors(session: AsyncSession, account_id: uuid.UUID, contacts: set[str]) -> list[str]:
    """Second factors usable now, strongest first: webauthn, otp (TOTP), sms, email, recovery."""
    stored = (await session.execute(_STORED_FACTORS, {"account_id": account_id})).one()
    factors = [name for name in ("webauthn", "otp") if getattr(stored, name)]
    factors.extend(channel for channel in ("sms", "email") if channel in contacts)
    if stored.recovery:
        factors.append("recovery")
    return factors


def strong_factor_exists(account_id: uuid.UUID | SQLColumnExpression[uuid.UUID]) -> ColumnElement[bool]:
    """SQL: the account has a confirmed authenticator app or a security key (to fold into a larger query)."""
    totp = exists().where(TotpCredential.account_id == account_id, TotpCredential.confirmed_at.is_not(None))
    key = exists().where(WebAuthnCredential.account_id == account_id)
    return or_(totp, key)


async def delete_factors(session: AsyncSession, account_id: uuid.UUID) -> None:
    for table in (TotpCredential, WebAuthnCredential, RecoveryCode, OneTimeCode, PendingChallenge, StepUpGrant):
        await session.execute(delete(table).where(table.account_id == account_id))


# --- step-up --------------------------------------------------------------------------


async def grant_step_up(
    session: AsyncSession,
    runtime: Runtime,
    account_id: uuid.UUID,
    *,
    session_id: uuid.UUID,
    action: str,
    method: str,
) -> StepUpGrant:
    grant = StepUpGrant(
        account_id=account_id,
        session_id=session_id,
        action=action,
        method=method,
        expires_at=datetime.now(UTC) + timedelta(seconds=runtime.settings.step_up_ttl_seconds),
    )
    session.add(grant)
    await session.flush()
    return grant


async def consume_step_up(session: AsyncSession, account_id: uuid.UUID, session_id: uuid.UUID, action: str) -> str:
    """Use the step-up granted for exactly this action in this session (once, before it expires)."""
    now = datetime.now(UTC)
    grant = await session.scalar(
        select(StepUpGrant)
        .where(
            StepUpGrant.account_id == account_id,
            StepUpGrant.session_id == session_id,
            StepUpGrant.action == action,
            StepUpGrant.used_at.is_(None),
            StepUpGrant.expires_at > now,
        )
        .order_by(StepUpGrant.created_at.desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if grant is None:
        raise StepUpRequired(f"confirm {action} with a second factor first", action=action)
    grant.used_at = now
    await session.flush()
    return grant.method
