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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from kit.statements import Statement, attach
from services.identity.accounts.service import has_contact, identifier_index
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
    SignalFacts,
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
    LoginAttempt,
    LoginChallenge,
    audit_log,
)
from services.identity.notifications.service import notify_account
from services.identity.passwords.service import password_expired, set_password
from services.identity.runtime import Runtime
from services.identity.tokens.service import LoginFacts, TokenPair, login_audit, start_session


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
    password changes nothing): phone verified, strong factor enrolled, and the signals' facts."""
    phone_verified = exists().where(
        CustomerProfile.account_id == Account.id, CustomerProfile.phone_verified_at.is_not(None)
    )
    return (
        select(
            Account,
            phone_verified.label("phone_verified"),
            mfa.strong_factor_exists(Account.id).label("strong_factor"),
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
    strong = bool(found["strong_factor"])
    if assessment.decision == "deny":
        await log_attempt(
            result="denied",
            reason="risk_denied" if assessment.risk_decision == "deny" else "restriction",
            signals=assessment.signals,
            risk_decision=assessment.risk_decision,
        )
        raise LoginDenied("this login is not allowed; contact the bank")
    if assessment.decision == "allow" and not strong:
        return await complete_login(
            session, runtime, account, ctx, amr=["pwd"], ident=ident_index, assessment=assessment, facts=facts
        )
    return await open_challenge(session, runtime, account, ctx, assessment=assessment, ident=ident_index, strong=strong)


async def _contacts(session: AsyncSession, runtime: Runtime, account: Account) -> set[str]:
    # identity's own indexes say which channels exist: offering a code never waits for the vault.
    return {channel for channel in ("sms", "email") if has_contact(account, channel)}


async def open_challenge(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    ctx: LoginContext,
    *,
    assessment: Assessment,
    ident: str,
    strong: bool,
) -> Challenge:
    methods = await mfa.available_factors(session, account.id, await _contacts(session, runtime, account))
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
    token, expires = _open_challenge(
        session, runtime, account, ctx, purpose=SECOND_FACTOR, methods=methods, reasons=reasons
    )
    await record_attempt(
        session,
        account=account,
        identifier=ident,
        ctx=ctx,
        method="pwd",
        result="challenge",
        reason=",".join(reasons)[:64] or None,
        signals=assessment.signals,
        risk_decision=assessment.risk_decision,
    )
    return Challenge(token=token, methods=methods, reasons=reasons, expires_at=expires)


def _open_challenge(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    ctx: LoginContext,
    *,
    purpose: str,
    methods: list[str],
    reasons: list[str],
    amr: list[str] | None = None,
) -> tuple[str, datetime]:
    """A login challenge bound to this device and address; only its hash is stored."""
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    expires = ctx.now + timedelta(seconds=runtime.settings.login_challenge_ttl_seconds)
    session.add(
        LoginChallenge(
            id_hash=token_hash(token),
            account_id=account.id,
            purpose=purpose,
            amr=amr,
            methods=methods,
            reasons=reasons,
            device_id=ctx.device_id,
            ip=ctx.ip,
            region=ctx.region,
            user_agent=ctx.user_agent,
            expires_at=expires,
        )
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
    assessment: Assessment | None = None,
    facts: SignalFacts | None = None,
) -> TokenPair | PasswordChangeRequired:
    """Open the session. With ``facts`` (read with the account's locked row) the device is known to be new
    or not beforehand, and the audit entry rides in the session's statement: one round trip less."""
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
    if facts is not None:
        new_device = ctx.device_id is not None and facts.devices > 0 and not facts.known_device
        if new_device:
            await _tell_new_device(session, runtime, account)
        # Pending ORM changes (the account's counters, a notification) are written before the
        # statement that appends the audit entry: the audit lock is held from it to the commit.
        await session.flush()
        opened = await start_session(session, runtime, account, amr=amr, login=login, audited_new_device=new_device)
        return opened.pair
    opened = await start_session(session, runtime, account, amr=amr, login=login)
    if opened.new_device:
        await _tell_new_device(session, runtime, account)
    # As above: everything else is written before the audit entry.
    await session.flush()
    await audit_log.append_entry(
        session, login_audit(account, opened.pair.session_id, amr, new_device=opened.new_device)
    )
    return opened.pair


async def _tell_new_device(session: AsyncSession, runtime: Runtime, account: Account) -> None:
    await notify_account(
        session,
        runtime,
        account,
        template="alert.new_device",
        body="A new device signed in to your Bank Suite account. If this was not you, contact the bank.",
    )


async def _password_change_challenge(
    session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext, *, amr: list[str], ident: str
) -> PasswordChangeRequired:
    """No session for a one-time or expired password: only a token that can set a new one."""
    token, expires = _open_challenge(
        session, runtime, account, ctx, purpose=PASSWORD_CHANGE, methods=[], reasons=["must_change_password"], amr=amr
    )
    await record_attempt(
        session,
        account=account,
        identifier=ident,
        ctx=ctx,
        method="+".join(amr),
        result="challenge",
        reason="must_change_password",
    )
    return PasswordChangeRequired(token=token, expires_at=expires)


async def finish_with_new_password(
    session: AsyncSession, runtime: Runtime, token: str, new_password: str
) -> TokenPair | PasswordChangeRequired:
    """Set the new password (policy and history checked) and open the session the login earned."""
    now = datetime.now(UTC)
    challenge, account = await load_challenge(session, token, now, purpose=PASSWORD_CHANGE)
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
        session, runtime, account, _ctx_of(challenge, now, runtime), amr=list(challenge.amr or ["pwd"]), ident=ident
    )


#: A challenge and its account, both row-locked, in one round trip (built once: it keeps its cache key).
_LOAD_CHALLENGE = (
    select(LoginChallenge, Account)
    .join(Account, Account.id == LoginChallenge.account_id)
    .where(LoginChallenge.id_hash == bindparam("id_hash"))
    .with_for_update()
)


async def load_challenge(
    session: AsyncSession, token: str, now: datetime, *, purpose: str = SECOND_FACTOR
) -> tuple[LoginChallenge, Account]:
    found = (await session.execute(_LOAD_CHALLENGE, {"id_hash": token_hash(token)})).first()
    if found is None:
        raise InvalidChallenge()
    challenge, account = found._tuple()
    if (
        challenge.purpose != purpose
        or challenge.completed_at is not None
        or challenge.expires_at <= now
        or account.status != AccountStatus.active
        or _is_locked(account, now)
    ):
        raise InvalidChallenge()
    return challenge, account


def _ctx_of(challenge: LoginChallenge, now: datetime, runtime: Runtime) -> LoginContext:
    return LoginContext(
        ip=challenge.ip,
        place=runtime.geo.locate(challenge.ip),
        device_id=challenge.device_id,
        user_agent=challenge.user_agent,
        now=now,
    )


async def send_challenge_code(session: AsyncSession, runtime: Runtime, token: str, channel: str) -> None:
    challenge, account = await load_challenge(session, token, datetime.now(UTC))
    if channel not in challenge.methods:
        raise FactorNotAvailable(f"{channel} is not offered for this login")
    await mfa.send_code(session, runtime, account, purpose=f"login:{challenge.id_hash[:16]}", channel=channel)


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
    challenge, account = await load_challenge(session, token, now)
    ctx = _ctx_of(challenge, now, runtime)
    if method not in challenge.methods:
        raise FactorNotAvailable(f"{method} is not offered for this login")
    ok = False
    if method == "otp" and code:
        ok = await mfa.verify_totp(session, runtime, account.id, code)
    elif method in ("sms", "email") and code:
        try:
            await mfa.verify_code(session, runtime, account.id, f"login:{challenge.id_hash[:16]}", code)
            ok = True
        except InvalidCode:
            ok = False
    elif method == "recovery" and code:
        ok = await mfa.use_recovery_code(session, account.id, code)
    elif method == "webauthn" and credential is not None:
        ok = await verify_assertion(session, runtime, account.id, challenge.webauthn_challenge, credential)
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
    return await complete_login(session, runtime, account, ctx, amr=["pwd", method], ident=ident)
