"""JWKS, token refresh, client credentials, sessions and devices, and the revocation feed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from kit.db import DBSession
from kit.errors import BadRequest, problem_response
from services.identity.accounts.service import revoke_sessions
from services.identity.deps import FollowsRevocations, SignedIn, session_id, subject_id
from services.identity.errors import InvalidClient, RefreshTokenReused, SessionNotFound, UnsupportedGrant
from services.identity.login.schemas import SESSION_EXAMPLE, LoginResponse
from services.identity.models import Device, Session, audit_log
from services.identity.runtime import Rt
from services.identity.tokens import service
from services.identity.tokens.clients import authenticate_client
from services.identity.tokens.schemas import (
    DeviceView,
    RefreshRequest,
    Revocation,
    RevocationFeed,
    RevokedCount,
    ServiceTokenResponse,
    SessionView,
)

well_known = APIRouter(tags=["tokens"])
public = APIRouter(prefix="/public", tags=["tokens"])
me = APIRouter(prefix="/me", tags=["sessions"])
internal = APIRouter(prefix="/internal", tags=["tokens"])


@well_known.get(
    "/.well-known/jwks.json",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "keys": [
                            {
                                "kty": "OKP",
                                "crv": "Ed25519",
                                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                                "kid": "1a2b3c4d5e6f7a8b",
                                "alg": "EdDSA",
                                "use": "sig",
                            }
                        ]
                    }
                }
            }
        }
    },
)
async def jwks(runtime: Rt) -> JSONResponse:
    """The public keys that verify access tokens (current key and keys rotated out within the overlap)."""
    return JSONResponse(await runtime.keys.jwks(), headers={"Cache-Control": "public, max-age=60"})


@public.post(
    "/token/refresh",
    response_model=LoginResponse,
    responses={200: {"content": {"application/json": {"example": SESSION_EXAMPLE}}}},
)
async def refresh(body: RefreshRequest, session: DBSession, runtime: Rt) -> Any:
    """Exchange a refresh token for a new access and refresh token (the old one stops working).

    Presenting a refresh token that was already used revokes the whole session:
    one of the two holders is a thief, and neither can tell which.
    """
    outcome = await service.rotate_refresh(session, runtime, body.refresh_token)
    if outcome.pair is None:
        assert outcome.reused_session is not None
        await audit_log.append(
            session,
            actor="system",
            actor_kind="system",
            action="session.revoked",
            target=str(outcome.reused_session),
            detail={"reason": "refresh_token_reuse"},
        )
        # The revocation must stick although the answer is an error: answer without raising.
        error = RefreshTokenReused()
        return problem_response(
            None,
            status=error.status,
            code=error.code,
            title=error.title,
            detail=error.detail,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return LoginResponse(status="authenticated", **outcome.pair.body())


_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type", "client_id", "client_secret"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string", "maxLength": 64},
                        "client_secret": {"type": "string", "maxLength": 512},
                        "scope": {"type": "string", "maxLength": 1000},
                    },
                },
                "example": {"grant_type": "client_credentials", "client_id": "risk", "client_secret": "..."},
            }
        },
    }
}
_MAX_FORM_BYTES = 4096


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of RFC 6749 (parsed here: no multipart dependency for three fields)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise BadRequest("the token request must be application/x-www-form-urlencoded")
    raw = await request.body()
    if len(raw) > _MAX_FORM_BYTES:
        raise BadRequest("the token request is too large")
    try:
        pairs = parse_qs(raw.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=10)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the token request is not a valid form") from exc
    if any(len(values) != 1 for values in pairs.values()):
        raise BadRequest("each form field must appear once")
    return {key: values[0] for key, values in pairs.items()}


@public.post("/oauth/token", response_model=ServiceTokenResponse, openapi_extra=_TOKEN_FORM)
async def client_credentials(request: Request, session: DBSession, runtime: Rt) -> ServiceTokenResponse:
    """OAuth2 client-credentials grant for the suite's services (form-encoded, RFC 6749 section 4.4)."""
    form = await _form(request)
    if form.get("grant_type") != "client_credentials":
        raise UnsupportedGrant("only client_credentials is supported here")
    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id or not client_secret or len(client_id) > 64 or len(client_secret) > 512:
        raise InvalidClient()
    client, granted = await authenticate_client(session, runtime, client_id, client_secret, form.get("scope"))
    token = await service.access_token(
        runtime,
        subject=client.client_id,
        kind="service",
        session_id=None,
        amr=["client_secret"],
        acr="aal1",
        scope=granted,
    )
    return ServiceTokenResponse(
        access_token=token, expires_in=runtime.settings.service_token_ttl_seconds, scope=granted
    )


def _session_view(row: Session, current: uuid.UUID | None) -> SessionView:
    return SessionView(
        id=row.id,
        current=row.id == current,
        acr=row.acr,
        amr=list(row.amr),
        device_id=row.device_id,
        region=row.region,
        user_agent=row.user_agent,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


@me.get("/sessions", response_model=list[SessionView])
async def list_sessions(principal: SignedIn, session: DBSession) -> list[SessionView]:
    """The signed-in person's live sessions, newest first."""
    rows = (
        await session.scalars(
            select(Session)
            .where(
                Session.account_id == subject_id(principal),
                Session.revoked_at.is_(None),
                Session.expires_at > datetime.now(UTC),
            )
            .order_by(Session.created_at.desc())
        )
    ).all()
    return [_session_view(r, session_id(principal)) for r in rows]


@me.delete("/sessions/{target}", response_model=RevokedCount)
async def revoke_session(target: uuid.UUID, principal: SignedIn, session: DBSession) -> RevokedCount:
    """Revoke one of my sessions (signs that device out)."""
    row = await session.get(Session, target, with_for_update=True)
    if row is None or row.account_id != subject_id(principal) or row.revoked_at is not None:
        raise SessionNotFound()
    row.revoked_at, row.revoke_reason = datetime.now(UTC), "revoked_by_holder"
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="session.revoked",
        target=str(target),
        detail={"reason": "revoked_by_holder"},
    )
    return RevokedCount(revoked=1)


@me.post("/sessions/revoke-all", response_model=RevokedCount)
async def revoke_all(
    principal: SignedIn, session: DBSession, keep_current: Annotated[bool, Query()] = False
) -> RevokedCount:
    """Revoke every session of mine (optionally all but this one)."""
    count = await revoke_sessions(
        session,
        subject_id(principal),
        "revoked_by_holder",
        except_session=session_id(principal) if keep_current else None,
    )
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="session.revoked_all",
        target=principal.subject,
        detail={"revoked": count, "kept_current": keep_current},
    )
    return RevokedCount(revoked=count)


@me.post("/logout", response_model=RevokedCount)
async def logout(principal: SignedIn, session: DBSession) -> RevokedCount:
    """End this session: its refresh token stops working and its access tokens are refused."""
    row = await session.get(Session, session_id(principal), with_for_update=True)
    assert row is not None
    row.revoked_at, row.revoke_reason = datetime.now(UTC), "logout"
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="session.logout",
        target=str(row.id),
        detail={},
    )
    return RevokedCount(revoked=1)


@me.get("/devices", response_model=list[DeviceView])
async def list_devices(principal: SignedIn, session: DBSession) -> list[DeviceView]:
    """Devices that signed in to my account."""
    rows = (
        await session.scalars(
            select(Device).where(Device.account_id == subject_id(principal)).order_by(Device.last_seen_at.desc())
        )
    ).all()
    return [
        DeviceView(
            device_id=r.device_id,
            user_agent=r.user_agent,
            first_seen_at=r.first_seen_at,
            last_seen_at=r.last_seen_at,
            last_region=r.last_region,
        )
        for r in rows
    ]


@internal.get("/revocations", response_model=RevocationFeed)
async def revocations(
    caller: FollowsRevocations,
    session: DBSession,
    runtime: Rt,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> RevocationFeed:
    """Sessions revoked after the cursor whose tokens could still be valid (for the gateway's cache).

    `after` omitted: every revocation still relevant. An entry can be dropped
    after its `expires_at`: no access token of that session is valid by then.
    """
    cursor = service.decode_cursor(after) if after else None
    if after and cursor is None:
        raise BadRequest("the cursor is not one this feed gave out")
    rows, next_cursor = await service.revocations_since(session, runtime, cursor)
    return RevocationFeed(
        revocations=[
            Revocation(
                session_id=r.id,
                revoked_at=r.revoked_at or datetime.now(UTC),
                expires_at=service.revocation_relevant_until(r, runtime),
            )
            for r in rows
        ],
        cursor=next_cursor or after or "",
    )
