"""Sessions, access tokens, refresh-token rotation, service tokens, the revocation feed."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, String, Uuid, bindparam, exists, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from kit.audit import APPENDED
from kit.statements import Statement
from services.identity.crypto import token_hash
from services.identity.errors import InvalidRefreshToken
from services.identity.models import Account, AccountStatus, Session, audit_log
from services.identity.runtime import Runtime

SECOND_FACTORS = frozenset({"otp", "sms", "email", "webauthn", "recovery"})


def acr_for(amr: list[str]) -> str:
    # aal3 only for an attested hardware key that verified the user (``hwk``, issue 13 item 19).
    if "webauthn" in amr and "hwk" in amr:
        return "aal3"
    if SECOND_FACTORS.intersection(amr):
        return "aal2"
    return "aal1"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    acr: str
    amr: list[str]

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "session_id": str(self.session_id),
            "acr": self.acr,
            "amr": self.amr,
        }


async def access_token(
    runtime: Runtime,
    *,
    subject: str,
    kind: str,
    session_id: uuid.UUID | None,
    amr: list[str],
    acr: str,
    scope: str = "",
) -> str:
    settings = runtime.settings
    now = int(time.time())
    ttl = settings.service_token_ttl_seconds if kind == "service" else settings.access_token_ttl_seconds
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "kind": kind,
        "amr": amr,
        "acr": acr,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    if scope:
        claims["scope"] = scope
    return await runtime.keys.sign(claims)


def _new_refresh_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


#: Everything a successful login writes, in one round trip: the device it came from (upserted, and
#: whether the account had any device before: both CTEs see the snapshot from before the upsert), the
#: session, its first refresh token (the token row refers to the session row), the login log's success
#: row and the login's audit entry (``kit.audit``'s CTEs). Without a device id the device part inserts
#: nothing.
_OPEN_LOGIN_SESSION = Statement(
    text(
        f"""
    WITH earlier AS (
        SELECT EXISTS (SELECT 1 FROM identity.device WHERE account_id = :account_id) AS had_devices
    ), seen AS (
        INSERT INTO identity.device
            (id, account_id, device_id, user_agent, last_ip, last_region, first_seen_at, last_seen_at)
        SELECT :device_row_id, :account_id, :device_id, :user_agent, :ip, :region, :now, :now
        WHERE :device_id IS NOT NULL
        ON CONFLICT (account_id, device_id) DO UPDATE
            SET last_seen_at = :now, last_ip = :ip, last_region = :region, user_agent = :user_agent
        RETURNING first_seen_at
    ), opened AS (
        INSERT INTO identity.session
            (id, account_id, kind, amr, acr, device_id, ip, region, user_agent, created_at, last_seen_at, expires_at)
        VALUES
            (:id, :account_id, :kind, :amr, :acr, :device_id, :ip, :region, :user_agent, :now, :now, :expires_at)
        RETURNING id
    ), logged AS (
        INSERT INTO identity.login_attempt
            (occurred_at, account_id, identifier_index, ip, region, device_id, user_agent,
             method, result, reason, failed_count, signals, risk_decision)
        VALUES
            (:now, :account_id, :identifier_index, :ip, :region, :device_id, :user_agent,
             :method, 'success', NULL, 0, :signals, :risk_decision)
    ), issued AS (
        INSERT INTO identity.refresh_token (token_hash, session_id, expires_at)
        SELECT :token_hash, opened.id, :token_expires_at FROM opened
    ), {audit_log.append_ctes()}
    SELECT earlier.had_devices AND coalesce((SELECT first_seen_at = :now FROM seen), false) AS new_device,
           a.seq, a.prev_hash, a.entry_hash
    FROM earlier, {APPENDED} AS a
    """  # noqa: S608 (the audit CTEs are the service's own constant SQL, never input)
    ).bindparams(
        bindparam("amr", type_=JSONB()),
        bindparam("signals", type_=JSONB()),
        bindparam("device_id", type_=String()),
        bindparam("now", type_=DateTime(timezone=True)),
        bindparam("account_id", type_=Uuid()),
        bindparam("device_row_id", type_=Uuid()),
        *audit_log.append_binds(),
    )
)


@dataclass(frozen=True, slots=True)
class LoginFacts:
    """What the login that opens a session tells the login log and the device list."""

    now: datetime
    identifier_index: str
    device_id: str | None
    ip: str | None
    region: str | None
    user_agent: str | None
    signals: list[str]
    risk_decision: str | None


async def start_session(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    *,
    amr: list[str],
    login: LoginFacts,
    new_device: bool,
) -> TokenPair:
    """Open the session a login earned, with its first refresh token, its device, its log row and its audit
    entry, in one statement. ``new_device`` (is the login's device new to the account) is known beforehand
    under the account's row lock, so no other login of the account can add a device meanwhile; the
    statement's own view of it is checked against the entry's."""
    settings = runtime.settings
    acr = acr_for(amr)
    session_id = uuid.uuid4()
    expires = login.now + timedelta(seconds=settings.session_absolute_ttl_seconds)
    refresh = _new_refresh_token()
    params = {
        "id": session_id,
        "account_id": account.id,
        "kind": account.kind,
        "amr": amr,
        "acr": acr,
        "device_row_id": uuid.uuid4(),
        "device_id": login.device_id,
        "ip": login.ip,
        "region": login.region,
        "user_agent": login.user_agent,
        "now": login.now,
        "expires_at": expires,
        "token_hash": token_hash(refresh),
        "token_expires_at": min(login.now + timedelta(seconds=settings.refresh_token_ttl_seconds), expires),
        "identifier_index": login.identifier_index,
        "method": "+".join(amr),
        "signals": login.signals,
        "risk_decision": login.risk_decision,
    }
    entry = audit_log.pending(
        actor=str(account.id),
        actor_kind=account.kind,
        action="login.succeeded",
        target=str(session_id),
        detail={"amr": amr, "acr": acr, "new_device": new_device},
    )
    row = await _OPEN_LOGIN_SESSION.fetchrow(session, params | entry.params)
    assert row is not None  # one row: "earlier" and the appended entry
    entry.appended(row)
    if bool(row["new_device"]) != new_device:
        # The account's row lock makes this impossible; an audit entry saying otherwise must not stay.
        raise RuntimeError("the login's device changed under the account's row lock")
    token = await access_token(
        runtime, subject=str(account.id), kind=account.kind, session_id=session_id, amr=amr, acr=acr
    )
    return TokenPair(token, refresh, settings.access_token_ttl_seconds, session_id, acr, amr)


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    pair: TokenPair | None
    #: Set when a used token came back: the session was revoked and this must be committed.
    reused_session: uuid.UUID | None = None


#: The whole rotation in one round trip. ``presented`` locks the token and its
#: session rows (``FOR UPDATE``), so two concurrent uses of one token are
#: serialised: the second waits, then re-reads the row with ``used_at`` set and
#: rotates nothing (``used`` also re-checks ``used_at IS NULL`` on the locked
#: row). ``used``, ``touched`` and ``issued`` only act when every condition for a
#: rotation holds; the caller tells the refusals apart from the row it gets back.
_ROTATE = Statement(
    text(
        """
    WITH presented AS (
        SELECT t.token_hash, t.used_at, t.expires_at AS token_expires_at,
               s.id AS session_id, s.account_id, s.kind, s.amr, s.acr,
               s.expires_at AS session_expires_at, s.revoked_at, a.status
        FROM identity.refresh_token AS t
        JOIN identity.session AS s ON s.id = t.session_id
        JOIN identity.account AS a ON a.id = s.account_id
        WHERE t.token_hash = :presented
        FOR UPDATE OF t, s
    ), used AS (
        UPDATE identity.refresh_token AS t SET used_at = :now
        FROM presented AS p
        WHERE t.token_hash = p.token_hash AND t.used_at IS NULL
          AND p.used_at IS NULL AND p.revoked_at IS NULL AND p.status = :active
          AND p.session_expires_at > :now AND p.token_expires_at > :now
        RETURNING p.session_id, p.session_expires_at
    ), touched AS (
        UPDATE identity.session AS s SET last_seen_at = :now FROM used AS u WHERE s.id = u.session_id
    ), issued AS (
        INSERT INTO identity.refresh_token (token_hash, session_id, expires_at)
        SELECT :new_hash, u.session_id, LEAST(CAST(:new_expires AS timestamptz), u.session_expires_at) FROM used AS u
        RETURNING token_hash
    )
    SELECT p.used_at, p.session_id, p.account_id, p.kind, p.amr, p.acr,
           EXISTS (SELECT 1 FROM issued) AS rotated
    FROM presented AS p
    """
    )
)

_REVOKE_FOR_REUSE = text(
    "UPDATE identity.session SET revoked_at = :now, revoke_reason = 'refresh_token_reuse' "
    "WHERE id = :session_id AND revoked_at IS NULL"
)


async def rotate_refresh(session: AsyncSession, runtime: Runtime, presented: str) -> RefreshOutcome:
    """Exchange a refresh token for a new pair; a used token revokes the whole session.

    One statement (``_ROTATE``) locks, checks and rotates; a reuse costs one
    more (the revocation), a refusal none.
    """
    now = datetime.now(UTC)
    refresh = _new_refresh_token()
    found = await _ROTATE.fetchrow(
        session,
        {
            "presented": token_hash(presented),
            "now": now,
            "active": AccountStatus.active.value,
            "new_hash": token_hash(refresh),
            "new_expires": now + timedelta(seconds=runtime.settings.refresh_token_ttl_seconds),
        },
    )
    if found is None:
        raise InvalidRefreshToken()
    session_id: uuid.UUID = found["session_id"]
    if found["used_at"] is not None:
        # The session row is locked by _ROTATE: the revocation cannot race a rotation.
        await session.execute(_REVOKE_FOR_REUSE, {"now": now, "session_id": session_id})
        return RefreshOutcome(None, reused_session=session_id)
    if not found["rotated"]:
        raise InvalidRefreshToken("the session has ended")
    amr, acr = list(found["amr"]), found["acr"]
    token = await access_token(
        runtime, subject=str(found["account_id"]), kind=found["kind"], session_id=session_id, amr=amr, acr=acr
    )
    return RefreshOutcome(TokenPair(token, refresh, runtime.settings.access_token_ttl_seconds, session_id, acr, amr))


#: Built once (a reused statement keeps its cache key); reads one boolean instead of loading the session row.
_SESSION_ACTIVE = select(
    exists().where(
        Session.id == bindparam("session_id", type_=Uuid()),
        Session.revoked_at.is_(None),
        Session.expires_at > bindparam("now", type_=DateTime(timezone=True)),
    )
)


async def session_is_active(session: AsyncSession, session_id: str | None) -> bool:
    """Checked on every signed-in request (logout and revocation take effect at once)."""
    if session_id is None:
        return False
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        return False
    return bool(await session.scalar(_SESSION_ACTIVE, {"session_id": sid, "now": datetime.now(UTC)}))


_CURSOR_PREFIX = "seq:"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The revocation number a cursor stands for; None for anything this feed did not give out.

    A cursor of the earlier time-ordered feed (``<time>|<session id>``) restarts from the beginning: its
    follower gets every revocation still relevant again (duplicates are harmless, a gap is not).
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if raw.startswith(_CURSOR_PREFIX):
        number = raw.removeprefix(_CURSOR_PREFIX)
        if number.isdigit() and len(number) <= 19:
            return int(number)
        return None
    at, _, sid = raw.partition("|")
    try:
        parsed = datetime.fromisoformat(at)
        uuid.UUID(sid)
    except ValueError:
        return None
    return 0 if parsed.tzinfo is not None else None


def revocation_relevant_until(row: Session, runtime: Runtime) -> datetime:
    """After this, no access token of the session can still be valid: the revocation can be forgotten."""
    assert row.revoked_at is not None
    settings = runtime.settings
    horizon = row.revoked_at + timedelta(seconds=settings.access_token_ttl_seconds + settings.jwt_leeway_seconds)
    return min(row.expires_at, horizon)


async def revocations_since(
    session: AsyncSession, runtime: Runtime, cursor: int | None, limit: int = 500
) -> tuple[list[Session], str | None]:
    """Sessions revoked after ``cursor`` in commit order (``revoked_seq``, migration 0007), still relevant now.

    The number is handed out under a row lock held to the end of the revoking transaction, so every number
    below one this reader sees is committed and visible too: a revocation that commits late can never land
    behind the cursor (issue 13 item 8).
    """
    settings = runtime.settings
    now = datetime.now(UTC)
    oldest = now - timedelta(seconds=settings.access_token_ttl_seconds + settings.jwt_leeway_seconds)
    query = select(Session).where(
        Session.revoked_seq.is_not(None), Session.revoked_at > oldest, Session.expires_at > now
    )
    if cursor is not None:
        query = query.where(Session.revoked_seq > cursor)
    rows = list((await session.scalars(query.order_by(Session.revoked_seq).limit(limit))).all())
    if rows:
        last = rows[-1]
        assert last.revoked_seq is not None
        return rows, encode_cursor(last.revoked_seq)
    return rows, None
