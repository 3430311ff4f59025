"""Password login, lockout, second-factor challenges and the login log.

Concurrency: the account row is locked (``SELECT ... FOR UPDATE``) for the
whole attempt, so attempts on one account run one after another and the
failure counter can never be read stale: with 50 wrong passwords in flight,
exactly ``lockout_threshold + 1`` are checked and every later one (a correct
password included) meets the lock.

Uniformity: unknown account, wrong password, locked, frozen and closed all
raise the same :class:`InvalidCredentials` after the same argon2 work; the
real reason goes to the login log only.
"""

from __future__ import annotations

import base64
import functools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    DateTime,
    Select,
    String,
    Table,
    Uuid,
    bindparam,
    exists,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from kit.db import flush_pending
from kit.statements import Statement, attach, table_label_prefix
from services.identity.accounts.service import identifier_index
from services.identity.crypto import token_hash
from services.identity.errors import (
    ContactNotVerified,
    FactorNotAvailable,
    InvalidChallenge,
    InvalidCode,
    InvalidCredentials,
    LoginDenied,
)
from services.identity.login.signals import (
    Assessment,
    LoginContext,
    assess,
    signal_fact_columns,
    signal_fact_params,
    signal_facts_of,
)
from services.identity.mfa import service as mfa
from services.identity.mfa.webauthn import verify_assertion
from services.identity.models import (
    Account,
    AccountKind,
    AccountStatus,
    CustomerProfile,
    Device,
    LoginAttempt,
    LoginChallenge,
    audit_log,
)
from services.identity.notifications.service import notify_account, verified_channels
from services.identity.passwords.service import password_expired, set_password
from services.identity.runtime import Runtime
from services.identity.tokens.service import LoginFacts, TokenPair, start_session


@dataclass(frozen=True, slots=True)
class Challenge:
    token: str
    methods: list[str]
    reasons: list[str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PasswordChangeRequired:
    """The password was a one-time (or expired) one: a new one must be set before any session exists."""

    token: str
    expires_at: datetime


LoginResult = TokenPair | Challenge | PasswordChangeRequired

SECOND_FACTOR = "second_factor"
PASSWORD_CHANGE = "password_change"  # noqa: S105 (a challenge purpose, not a secret)


#: Core insert on the table: the login log row is written as it is recorded,
#: without the ORM unit of work (nothing reads these rows back in the request).
_LOG_ATTEMPT = insert(cast(Table, LoginAttempt.__table__))


async def record_attempt(
    session: AsyncSession,
    *,
    account: Account | None,
    identifier: str,
    ctx: LoginContext,
    method: str,
    result: str,
    reason: str | None,
    signals: list[str] | None = None,
    risk_decision: str | None = None,
) -> None:
    await session.execute(
        _LOG_ATTEMPT,
        {
            "occurred_at": ctx.now,
            "account_id": account.id if account else None,
            "identifier_index": identifier,
            "ip": ctx.ip,
            "region": ctx.region,
            "device_id": ctx.device_id,
            "user_agent": ctx.user_agent,
            "method": method,
            "result": result,
            "reason": reason,
            "failed_count": account.failed_count if account else 0,
            "signals": signals or [],
            "risk_decision": risk_decision,
        },
    )


def _login_lookup(column: InstrumentedAttribute[Any]) -> Select[Any]:
    """The account for a login identifier, row-locked so concurrent attempts on it run one at a time, with
    everything the login decides on besides the password (read-only facts, so reading them for a wrong
    password changes nothing): phone verified, the second factors stored, and the signals' facts."""
    phone_verified = exists().where(
        CustomerProfile.account_id == Account.id, CustomerProfile.phone_verified_at.is_not(None)
    )
    return (
        select(
            Account,
            phone_verified.label("phone_verified"),
            *mfa.stored_factor_columns(Account.id),
            *signal_fact_columns(Account.id),
        )
        .where(column == bindparam("value"))
        .with_for_update(of=Account)
    )


#: One per identifier column, compiled once and run by asyncpg (``kit.statements``: a login is a few
#: statements, and SQLAlchemy's execution path was a fifth of its event-loop work).
_LOGIN_LOOKUP = {
    "email_index": Statement(_login_lookup(Account.email_index)),
    "phone_index": Statement(_login_lookup(Account.phone_index)),
    "username": Statement(_login_lookup(Account.username)),
}


def lock_seconds(runtime: Runtime, lockout_count: int) -> int:
    settings = runtime.settings
    return int(min(settings.lockout_max_seconds, settings.lockout_base_seconds * 2 ** max(0, lockout_count - 1)))


async def register_failure(session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext) -> bool:
    """Count a failed password or second factor; True when this failure locked the account."""
    account.failed_count += 1
    if account.failed_count <= runtime.settings.lockout_threshold:
        await session.flush()
        return False
    account.lockout_count += 1
    seconds = lock_seconds(runtime, account.lockout_count)
    account.locked_until = ctx.now + timedelta(seconds=seconds)
    await session.flush()
    await notify_account(
        session,
        runtime,
        account,
        template="alert.lockout",
        body=(
            "Your Bank Suite account was locked after several failed sign-in attempts. "
            "If this was not you, contact the bank."
        ),
    )
    await audit_log.append(
        session,
        actor="system",
        actor_kind="system",
        action="account.locked",
        target=str(account.id),
        detail={"lockout_count": account.lockout_count, "seconds": seconds, "failed_count": account.failed_count},
    )
    return True


def _is_locked(account: Account, now: datetime) -> bool:
    return account.locked_until is not None and account.locked_until > now


async def password_login(
    session: AsyncSession, runtime: Runtime, identifier: str, password: str, ctx: LoginContext
) -> LoginResult:
    """Check the password; finish the login, or open a second-factor challenge.

    Failures flush their bookkeeping and raise; the endpoint commits it (see
    ``keep_failures``) so counters and the log survive the failed request.
    """
    column, value = identifier_index(runtime.keyring, identifier)
    ident_index = runtime.keyring.index("login", value)
    found = await _LOGIN_LOOKUP[column].fetchrow(session, {"value": value} | signal_fact_params(runtime, ctx))
    # The locked row becomes the session's Account: counters and a rehash are flushed as UPDATEs of it.
    account = attach(session, Account, found) if found is not None else None
    # Every attempt of this request goes to the log under the same account, identifier and method.
    log_attempt = functools.partial(
        record_attempt, session, account=account, identifier=ident_index, ctx=ctx, method="pwd"
    )
    refusal: str | None = None
    if account is None:
        refusal = "unknown_account"
    elif account.status == AccountStatus.closed:
        refusal = "account_closed"
    elif account.status == AccountStatus.frozen:
        refusal = "account_frozen"
    elif _is_locked(account, ctx.now):
        refusal = "account_locked"
    if refusal is not None or account is None:
        await runtime.passwords.verify(None, password)  # the same work as a real check
        await log_attempt(result="failure", reason=refusal)
        raise InvalidCredentials()
    if not await runtime.passwords.verify(account.password_hash, password):
        locked = await register_failure(session, runtime, account, ctx)
        await log_attempt(result="failure", reason="wrong_password_locked" if locked else "wrong_password")
        raise InvalidCredentials()
    assert account.password_hash is not None
    if runtime.passwords.needs_rehash(account.password_hash):
        account.password_hash = await runtime.passwords.hash(password)
    assert found is not None
    if account.kind == AccountKind.customer and not found["phone_verified"]:
        await log_attempt(result="failure", reason="contact_not_verified")
        raise ContactNotVerified("verify your phone number with the code we sent first")
    facts = signal_facts_of(found)
    assessment = await assess(session, runtime, account, ctx, facts)
    strong = mfa.has_strong_factor(found)
    if assessment.decision == "deny":
        await log_attempt(
            result="denied",
            reason="risk_denied" if assessment.risk_decision == "deny" else "restriction",
            signals=assessment.signals,
            risk_decision=assessment.risk_decision,
        )
        raise LoginDenied("this login is not allowed; contact the bank")
    # Staff sign in with a second factor whenever they have one, whatever risk says; one with none
    # yet signs in at aal1 to enrol it (every sensitive staff route needs aal2).
    staff_second = account.kind == AccountKind.staff and runtime.settings.staff_second_factor_always
    methods = None
    if assessment.decision == "allow" and not strong and staff_second:
        methods = mfa.factors_of(found, await _contacts(session, runtime, account))
    if assessment.decision == "allow" and not strong and not methods:
        # The account's row lock keeps other logins from adding a device meanwhile.
        new_device = ctx.device_id is not None and facts.devices > 0 and not facts.known_device
        return await complete_login(
            session, runtime, account, ctx, amr=["pwd"], ident=ident_index, assessment=assessment, new_device=new_device
        )
    if methods is None:
        methods = mfa.factors_of(found, await _contacts(session, runtime, account))
    return await open_challenge(
        session, runtime, account, ctx, assessment=assessment, ident=ident_index, strong=strong, methods=methods
    )


async def _contacts(session: AsyncSession, runtime: Runtime, account: Account) -> set[str]:
    # identity's own indexes and verification times say which channels exist: offering a code never waits for
    # the vault. Only verified ones: a contact put on the account without proof never receives a login code.
    return set(verified_channels(account, await session.get(CustomerProfile, account.id)))


async def open_challenge(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    ctx: LoginContext,
    *,
    assessment: Assessment,
    ident: str,
    strong: bool,
    methods: list[str],
) -> Challenge:
    if not methods:
        await record_attempt(
            session,
            account=account,
            identifier=ident,
            ctx=ctx,
            method="pwd",
            result="denied",
            reason="no_second_factor",
            signals=assessment.signals,
            risk_decision=assessment.risk_decision,
        )
        raise LoginDenied("a second factor is needed and none is available; contact the bank")
    reasons = assessment.reasons or (["second_factor_enrolled"] if strong else [])
    token, expires = await _open_challenge(
        session,
        runtime,
        account,
        ctx,
        purpose=SECOND_FACTOR,
        methods=methods,
        reasons=reasons,
        attempt=_Attempt(
            identifier=ident,
            method="pwd",
            reason=",".join(reasons)[:64] or None,
            signals=assessment.signals,
            risk_decision=assessment.risk_decision,
        ),
    )
    return Challenge(token=token, methods=methods, reasons=reasons, expires_at=expires)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """The login log's ``challenge`` row written with a challenge."""

    identifier: str
    method: str
    reason: str | None
    signals: list[str] = field(default_factory=list)
    risk_decision: str | None = None


#: A challenge (only the token's hash is stored) and the login log's row for it, in one round trip.
_OPEN_CHALLENGE = Statement(
    text(
        """
        WITH opened AS (
            INSERT INTO identity.login_challenge
                (id_hash, account_id, purpose, amr, methods, reasons, device_id, ip, region, user_agent, expires_at)
            VALUES
                (:id_hash, :account_id, :purpose, :amr, :methods, :reasons, :device_id, :ip, :region, :user_agent,
                 :expires_at)
        )
        INSERT INTO identity.login_attempt
            (occurred_at, account_id, identifier_index, ip, region, device_id, user_agent,
             method, result, reason, failed_count, signals, risk_decision)
        VALUES
            (:now, :account_id, :identifier_index, :ip, :region, :device_id, :user_agent,
             :method, 'challenge', :reason, :failed_count, :signals, :risk_decision)
        """
    ).bindparams(
        bindparam("account_id", type_=Uuid()),
        bindparam("amr", type_=JSONB()),
        bindparam("methods", type_=JSONB()),
        bindparam("reasons", type_=JSONB()),
        bindparam("signals", type_=JSONB()),
        bindparam("device_id", type_=String()),
        bindparam("expires_at", type_=DateTime(timezone=True)),
        bindparam("now", type_=DateTime(timezone=True)),
    )
)


async def _open_challenge(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    ctx: LoginContext,
    *,
    purpose: str,
    methods: list[str],
    reasons: list[str],
    attempt: _Attempt,
    amr: list[str] | None = None,
) -> tuple[str, datetime]:
    """A login challenge bound to this device and address, and its login-log row."""
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    expires = ctx.now + timedelta(seconds=runtime.settings.login_challenge_ttl_seconds)
    await _OPEN_CHALLENGE.execute(
        session,
        {
            "id_hash": token_hash(token),
            "account_id": account.id,
            "purpose": purpose,
            "amr": amr,
            "methods": methods,
            "reasons": reasons,
            "device_id": ctx.device_id,
            "ip": ctx.ip,
            "region": ctx.region,
            "user_agent": ctx.user_agent,
            "expires_at": expires,
            "now": ctx.now,
            "identifier_index": attempt.identifier,
            "method": attempt.method,
            "reason": attempt.reason,
            "failed_count": account.failed_count,
            "signals": attempt.signals,
            "risk_decision": attempt.risk_decision,
        },
    )
    return token, expires


async def complete_login(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    ctx: LoginContext,
    *,
    amr: list[str],
    ident: str,
    new_device: bool,
    assessment: Assessment | None = None,
) -> TokenPair | PasswordChangeRequired:
    """Open the session. ``new_device`` is read under the account's row lock, so it holds until the commit and
    the audit entry can say it: the entry rides in the session's statement."""
    if account.failed_count or account.lockout_count or account.locked_until is not None:
        # Only touched when there is something to reset: an untouched account leaves the unit of
        # work nothing to compare or write (the common login).
        account.failed_count = 0
        account.lockout_count = 0
        account.locked_until = None
    if password_expired(runtime, account):
        account.must_change_password = True
    if account.must_change_password:
        return await _password_change_challenge(session, runtime, account, ctx, amr=amr, ident=ident)
    login = LoginFacts(
        now=ctx.now,
        identifier_index=ident,
        device_id=ctx.device_id,
        ip=ctx.ip,
        region=ctx.region,
        user_agent=ctx.user_agent,
        signals=assessment.signals if assessment else [],
        risk_decision=assessment.risk_decision if assessment else None,
    )
    if new_device:
        await notify_account(
            session,
            runtime,
            account,
            template="alert.new_device",
            body="A new device signed in to your Bank Suite account. If this was not you, contact the bank.",
        )
    # Pending ORM changes (the account's counters, a notification) are written before the
    # statement that appends the audit entry: the audit lock is held from it to the commit.
    await flush_pending(session)
    return await start_session(session, runtime, account, amr=amr, login=login, new_device=new_device)


async def _password_change_challenge(
    session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext, *, amr: list[str], ident: str
) -> PasswordChangeRequired:
    """No session for a one-time or expired password: only a token that can set a new one."""
    token, expires = await _open_challenge(
        session,
        runtime,
        account,
        ctx,
        purpose=PASSWORD_CHANGE,
        methods=[],
        reasons=["must_change_password"],
        amr=amr,
        attempt=_Attempt(identifier=ident, method="+".join(amr), reason="must_change_password"),
    )
    return PasswordChangeRequired(token=token, expires_at=expires)


async def finish_with_new_password(
    session: AsyncSession, runtime: Runtime, token: str, new_password: str
) -> TokenPair | PasswordChangeRequired:
    """Set the new password (policy and history checked) and open the session the login earned."""
    now = datetime.now(UTC)
    pending = await load_challenge(session, token, now, purpose=PASSWORD_CHANGE)
    challenge, account = pending.challenge, pending.account
    await set_password(
        session,
        runtime,
        account,
        new_password,
        actor=str(account.id),
        actor_kind=account.kind,
        action="password.changed_at_login",
    )
    challenge.completed_at = now
    ident = runtime.keyring.index("login", f"account:{account.id}")
    return await complete_login(
        session,
        runtime,
        account,
        _ctx_of(challenge, now, runtime),
        amr=list(challenge.amr or ["pwd"]),
        ident=ident,
        new_device=pending.new_device,
    )


#: A challenge and its account, both row-locked, in one round trip, with whether the challenge's device would
#: be a new one for the account (the account's row lock keeps that true until the commit).
_LOAD_CHALLENGE = Statement(
    select(
        LoginChallenge,
        Account,
        (
            LoginChallenge.device_id.is_not(None)
            & exists().where(Device.account_id == LoginChallenge.account_id)
            & ~exists().where(
                Device.account_id == LoginChallenge.account_id, Device.device_id == LoginChallenge.device_id
            )
        ).label("new_device"),
    )
    .join(Account, Account.id == LoginChallenge.account_id)
    .where(LoginChallenge.id_hash == bindparam("id_hash"))
    .with_for_update(of=(LoginChallenge, Account))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)


_CHALLENGE_LABELS, _ACCOUNT_LABELS = table_label_prefix(LoginChallenge), table_label_prefix(Account)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A challenge and its account (the session's objects, both row-locked) and whether its device is new."""

    challenge: LoginChallenge
    account: Account
    new_device: bool


async def load_challenge(
    session: AsyncSession, token: str, now: datetime, *, purpose: str = SECOND_FACTOR
) -> PendingLogin:
    found = await _LOAD_CHALLENGE.fetchrow(session, {"id_hash": token_hash(token)})
    if found is None:
        raise InvalidChallenge()
    challenge = attach(session, LoginChallenge, found, prefix=_CHALLENGE_LABELS)
    account = attach(session, Account, found, prefix=_ACCOUNT_LABELS)
    if (
        challenge.purpose != purpose
        or challenge.completed_at is not None
        or challenge.expires_at <= now
        or account.status != AccountStatus.active
        or _is_locked(account, now)
    ):
        raise InvalidChallenge()
    return PendingLogin(challenge, account, bool(found["new_device"]))


def _ctx_of(challenge: LoginChallenge, now: datetime, runtime: Runtime) -> LoginContext:
    return LoginContext(
        ip=challenge.ip,
        place=runtime.geo.locate(challenge.ip),
        device_id=challenge.device_id,
        user_agent=challenge.user_agent,
        now=now,
    )


async def send_challenge_code(session: AsyncSession, runtime: Runtime, token: str, channel: str) -> None:
    pending = await load_challenge(session, token, datetime.now(UTC))
    if channel not in pending.challenge.methods:
        raise FactorNotAvailable(f"{channel} is not offered for this login")
    purpose = f"login:{pending.challenge.id_hash[:16]}"
    await mfa.send_code(session, runtime, pending.account, purpose=purpose, channel=channel, verified_only=True)


async def complete_challenge(
    session: AsyncSession,
    runtime: Runtime,
    token: str,
    method: str,
    *,
    code: str | None = None,
    credential: dict[str, Any] | None = None,
) -> TokenPair | PasswordChangeRequired:
    now = datetime.now(UTC)
    pending = await load_challenge(session, token, now)
    challenge, account = pending.challenge, pending.account
    ctx = _ctx_of(challenge, now, runtime)
    if method not in challenge.methods:
        raise FactorNotAvailable(f"{method} is not offered for this login")
    ok = False
    earned = [method]
    if method == "otp" and code:
        ok = await mfa.verify_totp(session, runtime, account.id, code)
    elif method in ("sms", "email") and code:
        try:
            await mfa.verify_code(session, runtime, account.id, f"login:{challenge.id_hash[:16]}", code)
            ok = True
        except InvalidCode:
            ok = False
    elif method == "recovery" and code:
        ok = await mfa.use_recovery_code(session, runtime, account.id, code)
    elif method == "webauthn" and credential is not None:
        passkey = await verify_assertion(session, runtime, account.id, challenge.webauthn_challenge, credential)
        ok, earned = passkey is not None, passkey or earned
    ident = runtime.keyring.index("login", f"account:{account.id}")
    if not ok:
        locked = await register_failure(session, runtime, account, ctx)
        await record_attempt(
            session,
            account=account,
            identifier=ident,
            ctx=ctx,
            method=method,
            result="failure",
            reason="wrong_second_factor_locked" if locked else "wrong_second_factor",
        )
        if locked:
            challenge.completed_at = now
        raise InvalidCode("the code is wrong, expired or already used")
    challenge.completed_at = now
    return await complete_login(
        session, runtime, account, ctx, amr=["pwd", *earned], ident=ident, new_device=pending.new_device
    )
