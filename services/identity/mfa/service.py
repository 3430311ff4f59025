"""Second factors: TOTP, SMS/email one-time codes, recovery codes, WebAuthn, and step-up grants."""

from __future__ import annotations

import base64
import hmac
import io
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import segno
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    SQLColumnExpression,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kit.statements import Statement
from services.identity.crypto import token_hash
from services.identity.errors import (
    FactorNotAvailable,
    InvalidCode,
    PayloadHashRequired,
    StepUpRequired,
    TooManyAttempts,
)
from services.identity.models import (
    Account,
    CustomerProfile,
    OneTimeCode,
    PendingChallenge,
    RecoveryCode,
    Session,
    StepUpGrant,
    TotpCredential,
    WebAuthnCredential,
)
from services.identity.notifications.service import notify_account, verified_channels
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


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (current one, or one step either side) whose code equals ``code``."""
    code = code.strip()
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    current = int(time.time() // TOTP_PERIOD)
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_PERIOD), code):
            return step
    return None


#: The login and step-up checks of a code (the enrolment's confirmation keeps the ORM: it answers with the row).
_CONFIRMED_TOTP_SECRET = Statement(
    select(TotpCredential.secret_enc).where(
        TotpCredential.account_id == bindparam("account_id", type_=Uuid()), TotpCredential.confirmed_at.is_not(None)
    )
)
_ADVANCE_TOTP_STEP = Statement(
    text(
        "UPDATE identity.totp_credential SET last_used_step = :step "
        "WHERE account_id = :account_id AND last_used_step < :step RETURNING account_id"
    ).bindparams(bindparam("account_id", type_=Uuid()), bindparam("step", type_=BigInteger()))
)


async def verify_totp(
    session: AsyncSession, runtime: Runtime, account_id: uuid.UUID, code: str, *, confirming: bool = False
) -> bool:
    """True once per code: a code whose step is not after the last accepted one is a replay.

    The step is advanced with a conditional UPDATE, so two concurrent requests
    with the same code cannot both succeed.
    """
    if not confirming:
        secret_enc = await _CONFIRMED_TOTP_SECRET.fetchval(session, {"account_id": account_id})
        if secret_enc is None:
            return False
        step = _matching_step(runtime.keyring.totp.decrypt_text(secret_enc, _totp_context(account_id)), code)
        if step is None:
            return False
        return await _ADVANCE_TOTP_STEP.fetchval(session, {"account_id": account_id, "step": step}) is not None
    credential = await session.get(TotpCredential, account_id)
    if credential is None or credential.confirmed_at is not None:
        return False
    step = _matching_step(runtime.keyring.totp.decrypt_text(credential.secret_enc, _totp_context(account_id)), code)
    if step is None:
        return False
    advanced = await session.execute(
        update(TotpCredential)
        .where(TotpCredential.account_id == account_id, TotpCredential.last_used_step < step)
        .values(last_used_step=step, confirmed_at=datetime.now(UTC))
        .returning(TotpCredential.account_id)
    )
    ok = advanced.first() is not None
    await session.refresh(credential)  # the enrolment answer shows when it was confirmed
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
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    *,
    purpose: str,
    channel: str,
    verified_only: bool = False,
) -> uuid.UUID:
    """Send a fresh code (earlier unused codes for the same purpose stop working).

    ``verified_only`` (login and reset codes): only to a contact the holder verified, never to one put on
    the account since (issue 13 item 1: an attacker's unverified e-mail must not receive a reset code).
    """
    if channel not in ("sms", "email"):
        raise FactorNotAvailable("codes go by sms or email")
    if verified_only and channel not in verified_channels(account, await session.get(CustomerProfile, account.id)):
        raise FactorNotAvailable(f"the account has no verified {channel} contact")
    settings = runtime.settings
    now = datetime.now(UTC)
    sent_today = await session.scalar(
        select(func.count()).where(
            OneTimeCode.account_id == account.id, OneTimeCode.created_at > now - timedelta(days=1)
        )
    )
    if (sent_today or 0) >= settings.code_sends_per_account_per_day:
        # Issue 13 item 15: an account cannot be made to receive (and the bank to pay for) codes without end.
        raise TooManyAttempts("too many codes were sent to this account today; try again tomorrow")
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
        session.add(RecoveryCode(account_id=account_id, code_hash=_recovery_hash(runtime, account_id, code)))
    await session.flush()
    return codes


async def has_recovery_codes(session: AsyncSession, account_id: uuid.UUID) -> bool:
    count = await session.scalar(
        select(func.count()).where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
    )
    return bool(count)


def _recovery_hash(runtime: Runtime, account_id: uuid.UUID, code: str) -> str:
    """Keyed with identity's index key and the account (issue 13 item 16): a copy of the table alone does not
    let anyone test guesses offline, and equal codes of two accounts do not look equal."""
    return runtime.keyring.index(f"recovery:{account_id}", code)


async def use_recovery_code(session: AsyncSession, runtime: Runtime, account_id: uuid.UUID, code: str) -> bool:
    normalised = code.strip().lower().replace(" ", "")
    if len(normalised) == 10:
        normalised = _format_recovery(normalised)
    # Codes issued before the keyed hash (plain SHA-256) keep working until used or replaced.
    accepted = [_recovery_hash(runtime, account_id, normalised), token_hash(normalised)]
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account_id,
            RecoveryCode.code_hash.in_(accepted),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
        .returning(RecoveryCode.id)
    )
    return result.first() is not None


# --- which factors an account has ----------------------------------------------------


def stored_factor_columns(account_id: uuid.UUID | SQLColumnExpression[uuid.UUID]) -> list[ColumnElement[bool]]:
    """SQL: whether the account has a security key (``webauthn``), a confirmed authenticator app (``otp``) and
    an unused recovery code (``recovery``), to fold into a larger query (the login's account lookup)."""
    return [
        exists().where(WebAuthnCredential.account_id == account_id).label("webauthn"),
        exists().where(TotpCredential.account_id == account_id, TotpCredential.confirmed_at.is_not(None)).label("otp"),
        exists().where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)).label("recovery"),
    ]


#: Which stored factors an account has, in one round trip.
_STORED_FACTORS = Statement(select(*stored_factor_columns(bindparam("account_id", type_=Uuid()))))


def factors_of(stored: Mapping[str, Any], contacts: set[str]) -> list[str]:
    """Second factors usable now, strongest first: webauthn, otp (TOTP), sms, email, recovery; ``stored``
    is a row with :func:`stored_factor_columns`."""
    factors = [name for name in ("webauthn", "otp") if stored[name]]
    factors.extend(channel for channel in ("sms", "email") if channel in contacts)
    if stored["recovery"]:
        factors.append("recovery")
    return factors


def has_strong_factor(stored: Mapping[str, Any]) -> bool:
    """A security key or a confirmed authenticator app (a login with either always asks for it)."""
    return bool(stored["webauthn"] or stored["otp"])


async def available_factors(session: AsyncSession, account_id: uuid.UUID, contacts: set[str]) -> list[str]:
    """Second factors usable now, strongest first: webauthn, otp (TOTP), sms, email, recovery."""
    stored = await _STORED_FACTORS.fetchrow(session, {"account_id": account_id})
    assert stored is not None  # a SELECT of three EXISTS is one row
    return factors_of(stored, contacts)


async def delete_factors(session: AsyncSession, account_id: uuid.UUID) -> None:
    for table in (TotpCredential, WebAuthnCredential, RecoveryCode, OneTimeCode, PendingChallenge, StepUpGrant):
        await session.execute(delete(table).where(table.account_id == account_id))


# --- step-up --------------------------------------------------------------------------


#: Actions whose step-up covers one payload only (issue 13 item 16): a step-up for a large transfer is not a
#: five-minute licence for any large transfer.
BOUND_ACTIONS = frozenset({"transfer.large"})


async def grant_step_up(
    session: AsyncSession,
    runtime: Runtime,
    account_id: uuid.UUID,
    *,
    session_id: uuid.UUID,
    action: str,
    method: str,
    payload_hash: str | None = None,
) -> StepUpGrant:
    if action in BOUND_ACTIONS and payload_hash is None:
        raise PayloadHashRequired(f"a step-up for {action} names the payload it covers (payload_hash)")
    grant = StepUpGrant(
        account_id=account_id,
        session_id=session_id,
        action=action,
        method=method,
        payload_hash=payload_hash if action in BOUND_ACTIONS else None,
        expires_at=datetime.now(UTC) + timedelta(seconds=runtime.settings.step_up_ttl_seconds),
    )
    session.add(grant)
    await session.flush()
    return grant


async def consume_step_up(
    session: AsyncSession,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    action: str,
    *,
    payload_hash: str | None = None,
) -> str:
    """Use the step-up granted for exactly this action in this session (once, before it expires); for a
    bound action, only the grant made for exactly this payload."""
    now = datetime.now(UTC)
    conditions = [
        StepUpGrant.account_id == account_id,
        StepUpGrant.session_id == session_id,
        StepUpGrant.action == action,
        StepUpGrant.used_at.is_(None),
        StepUpGrant.expires_at > now,
    ]
    if action in BOUND_ACTIONS:
        if payload_hash is None:
            raise PayloadHashRequired(f"consuming a step-up for {action} names its payload (payload_hash)")
        conditions.append(StepUpGrant.payload_hash == payload_hash)
    grant = await session.scalar(
        select(StepUpGrant)
        .where(*conditions)
        .order_by(StepUpGrant.created_at.desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if grant is None:
        raise StepUpRequired(f"confirm {action} with a second factor first", action=action)
    grant.used_at = now
    await session.flush()
    return grant.method


# --- changes of factors -----------------------------------------------------------------


#: The step-up action that confirms adding or removing a second factor.
FACTOR_CHANGE = "mfa.change"


async def fresh_strong_login(session: AsyncSession, runtime: Runtime, session_id: uuid.UUID) -> bool:
    """Whether this session is a login at aal2 or above made within ``factor_change_fresh_login_seconds``."""
    row = await session.get(Session, session_id)
    if row is None:
        return False
    recent = datetime.now(UTC) - timedelta(seconds=runtime.settings.factor_change_fresh_login_seconds)
    return row.acr in ("aal2", "aal3") and row.created_at > recent


async def has_second_factor(session: AsyncSession, account: Account) -> bool:
    """Any factor a step-up could use: a stored one, or a verified phone or e-mail."""
    stored = await _STORED_FACTORS.fetchrow(session, {"account_id": account.id})
    assert stored is not None
    if stored["webauthn"] or stored["otp"] or stored["recovery"]:
        return True
    return bool(verified_channels(account, await session.get(CustomerProfile, account.id)))


async def passkeys(session: AsyncSession, account_id: uuid.UUID) -> list[WebAuthnCredential]:
    query = select(WebAuthnCredential).where(WebAuthnCredential.account_id == account_id)
    return list((await session.scalars(query.order_by(WebAuthnCredential.created_at))).all())


async def remove_passkey(session: AsyncSession, account_id: uuid.UUID, credential_id: bytes) -> bool:
    result = await session.execute(
        delete(WebAuthnCredential)
        .where(WebAuthnCredential.account_id == account_id, WebAuthnCredential.credential_id == credential_id)
        .returning(WebAuthnCredential.account_id)
    )
    return result.first() is not None
