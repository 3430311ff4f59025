"""Login (password, then a second factor when needed) and password reset by a verified channel."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from fastapi import APIRouter, Request, status

from kit.db import DBSession
from services.identity.accounts.service import find_for_login
from services.identity.deps import keep_failures, login_context
from services.identity.errors import FactorNotAvailable, InvalidCode, TooManyAttempts
from services.identity.login import service
from services.identity.login.schemas import (
    Accepted,
    ChallengeRef,
    ChallengeSendRequest,
    ChallengeVerifyRequest,
    LoginRequest,
    LoginResponse,
    NewPasswordRequest,
    PasswordResetFinish,
    PasswordResetStart,
    SentResponse,
    WebAuthnOptions,
)
from services.identity.mfa import service as mfa
from services.identity.mfa.webauthn import authentication_options
from services.identity.models import AccountStatus
from services.identity.passwords.service import set_password
from services.identity.runtime import Rt
from services.identity.tokens.service import TokenPair

router = APIRouter(prefix="/public", tags=["login"])

FAILURE_EXAMPLE = {
    401: {
        "description": "Login failed (the same answer for unknown account, wrong password, locked or frozen account)",
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "urn:bank-suite:problem:invalid_credentials",
                    "title": "Login failed",
                    "status": 401,
                    "code": "invalid_credentials",
                    "detail": "Login failed",
                }
            }
        },
    }
}


def _response(result: service.LoginResult) -> LoginResponse:
    if isinstance(result, TokenPair):
        return LoginResponse(status="authenticated", **result.body())
    if isinstance(result, service.PasswordChangeRequired):
        return LoginResponse(
            status="password_change_required",
            challenge=result.token,
            reasons=["must_change_password"],
            expires_at=result.expires_at,
        )
    return LoginResponse(
        status="mfa_required",
        challenge=result.token,
        methods=result.methods,
        reasons=result.reasons,
        expires_at=result.expires_at,
    )


@router.post("/login", response_model=LoginResponse, responses=FAILURE_EXAMPLE)  # type: ignore[arg-type]
async def login(body: LoginRequest, request: Request, session: DBSession, runtime: Rt) -> LoginResponse:
    """Sign in with a password.

    Answers with tokens, or with a second-factor challenge when the account has
    an authenticator enrolled, the login looks unusual (new device or region,
    impossible travel, account restrictions) or risk asks for it or cannot
    answer (fail closed). More than 3 consecutive failures lock the account for
    a time that doubles with each lockout.
    """
    ctx = login_context(request, runtime, body.device_id)
    async with keep_failures(session):
        result = await service.password_login(session, runtime, body.identifier, body.password, ctx)
    return _response(result)


@router.post("/login/challenge/send", response_model=SentResponse)
async def send_challenge_code(body: ChallengeSendRequest, session: DBSession, runtime: Rt) -> SentResponse:
    """Send a one-time code for a pending login by SMS or email (a new code replaces the previous one)."""
    await service.send_challenge_code(session, runtime, body.challenge, body.channel)
    return SentResponse(sent=True, channel=body.channel)


@router.post("/login/challenge/webauthn-options", response_model=WebAuthnOptions)
async def challenge_webauthn_options(body: ChallengeRef, session: DBSession, runtime: Rt) -> WebAuthnOptions:
    """WebAuthn request options (`navigator.credentials.get`) for a pending login."""
    pending = await service.load_challenge(session, body.challenge, datetime.now(UTC))
    raw, options = await authentication_options(session, runtime, pending.account.id)
    pending.challenge.webauthn_challenge = raw
    return WebAuthnOptions(options=options)


@router.post("/login/challenge/verify", response_model=LoginResponse)
async def verify_challenge(body: ChallengeVerifyRequest, session: DBSession, runtime: Rt) -> LoginResponse:
    """Finish a login with a second factor: `otp` (authenticator app), `sms`/`email` code, `recovery` code
    or `webauthn` assertion. A TOTP code already used is refused; wrong factors count toward the lockout."""
    async with keep_failures(session):
        pair = await service.complete_challenge(
            session, runtime, body.challenge, body.method, code=body.code, credential=body.credential
        )
    return _response(pair)


@router.post("/login/password", response_model=LoginResponse)
async def set_new_password(body: NewPasswordRequest, session: DBSession, runtime: Rt) -> LoginResponse:
    """Finish a login whose password was a one-time or expired one: set a new password (policy and
    history apply), then the session opens. Until then no token exists for the account."""
    return _response(await service.finish_with_new_password(session, runtime, body.challenge, body.new_password))


@router.post("/password/reset/start", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def start_reset(body: PasswordResetStart, session: DBSession, runtime: Rt) -> Accepted:
    """Send a reset code to the account's verified phone or email. Always 202: says nothing about the account."""
    account = await find_for_login(session, runtime.keyring, body.identifier)
    if account is not None and account.status == AccountStatus.active:
        # No such (verified) contact on the account, or its daily code cap reached: the answer stays the same.
        with contextlib.suppress(FactorNotAvailable, TooManyAttempts):
            await mfa.send_code(
                session, runtime, account, purpose="password.reset", channel=body.channel, verified_only=True
            )
    return Accepted(accepted=True)


@router.post("/password/reset/finish", response_model=Accepted)
async def finish_reset(body: PasswordResetFinish, session: DBSession, runtime: Rt) -> Accepted:
    """Set a new password with the reset code; every session is revoked and the holder notified."""
    account = await find_for_login(session, runtime.keyring, body.identifier)
    if account is None or account.status != AccountStatus.active:
        raise InvalidCode()
    async with keep_failures(session):
        await mfa.verify_code(session, runtime, account.id, "password.reset", body.code)
    await set_password(
        session,
        runtime,
        account,
        body.new_password,
        actor=str(account.id),
        actor_kind=account.kind,
        action="password.reset",
    )
    return Accepted(accepted=True)
