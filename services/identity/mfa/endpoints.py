"""Enrolment of second factors, step-up, and password change (for any signed-in person)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, status
from sqlalchemy import select
from webauthn.helpers import bytes_to_base64url

from kit.db import DBSession
from services.identity.accounts.service import get_account, has_contact
from services.identity.deps import SignedIn, keep_failures, login_context, session_id, subject_id
from services.identity.errors import FactorNotAvailable, InvalidCode, InvalidCredentials, WebAuthnFailed
from services.identity.login.service import register_failure
from services.identity.mfa import service, webauthn
from services.identity.mfa.schemas import (
    CodeRequest,
    Factors,
    PasswordChange,
    PasswordChanged,
    RecoveryCodes,
    StepUpGranted,
    StepUpRequest,
    StepUpSend,
    TotpConfirmed,
    TotpEnrolmentResponse,
    WebAuthnRegistered,
    WebAuthnRegistration,
    WebAuthnRegistrationOptions,
)
from services.identity.models import Account, PendingChallenge, audit_log
from services.identity.passwords.service import set_password
from services.identity.runtime import Rt, Runtime

router = APIRouter(prefix="/me", tags=["second factors"])

STEP_UP_CEREMONY = "webauthn.step_up"


async def _contacts(session: DBSession, runtime: Runtime, account: Account) -> set[str]:
    """The code channels the account has (identity's own indexes: no vault call)."""
    return {c for c in ("sms", "email") if has_contact(account, c)}


async def _first_factor_codes(session: DBSession, runtime: Runtime, account_id: uuid.UUID) -> list[str] | None:
    if await service.has_recovery_codes(session, account_id):
        return None
    return await service.new_recovery_codes(session, runtime, account_id)


@router.get("/mfa", response_model=Factors)
async def my_factors(principal: SignedIn, session: DBSession, runtime: Rt) -> Factors:
    """The second factors available to me, strongest first."""
    account = await get_account(session, subject_id(principal))
    return Factors(
        factors=await service.available_factors(session, account.id, await _contacts(session, runtime, account))
    )


@router.post("/mfa/totp", response_model=TotpEnrolmentResponse, status_code=status.HTTP_201_CREATED)
async def enrol_totp(principal: SignedIn, session: DBSession, runtime: Rt) -> TotpEnrolmentResponse:
    """Start enrolling an authenticator app: scan the QR code (or enter the secret), then confirm a code."""
    account = await get_account(session, subject_id(principal))
    label = account.username or "customer"
    enrolment = await service.start_totp(session, runtime, account, label)
    return TotpEnrolmentResponse(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg_data_uri
    )


@router.post("/mfa/totp/confirm", response_model=TotpConfirmed)
async def confirm_totp(body: CodeRequest, principal: SignedIn, session: DBSession, runtime: Rt) -> TotpConfirmed:
    """Confirm the authenticator with its current code; from now on every login asks for it.

    Recovery codes are issued (and shown this once) with the first second factor.
    """
    account_id = subject_id(principal)
    if not await service.verify_totp(session, runtime, account_id, body.code, confirming=True):
        raise InvalidCode()
    codes = await _first_factor_codes(session, runtime, account_id)
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="mfa.totp_enrolled",
        target=principal.subject,
        detail={},
    )
    return TotpConfirmed(confirmed=True, recovery_codes=codes)


@router.delete("/mfa/totp", response_model=Factors)
async def remove_totp(principal: SignedIn, session: DBSession, runtime: Rt) -> Factors:
    """Remove the authenticator app (needs a step-up for `mfa.remove`)."""
    account = await get_account(session, subject_id(principal))
    await service.consume_step_up(session, account.id, session_id(principal), "mfa.remove")
    if not await service.remove_totp(session, account.id):
        raise FactorNotAvailable("no authenticator app is enrolled")
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="mfa.totp_removed",
        target=principal.subject,
        detail={},
    )
    return Factors(
        factors=await service.available_factors(session, account.id, await _contacts(session, runtime, account))
    )


@router.post("/mfa/recovery-codes", response_model=RecoveryCodes)
async def regenerate_recovery_codes(principal: SignedIn, session: DBSession, runtime: Rt) -> RecoveryCodes:
    """Replace all recovery codes (needs a step-up for `mfa.recovery_codes`); shown once, stored hashed."""
    account_id = subject_id(principal)
    await service.consume_step_up(session, account_id, session_id(principal), "mfa.recovery_codes")
    codes = await service.new_recovery_codes(session, runtime, account_id)
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="mfa.recovery_codes_issued",
        target=principal.subject,
        detail={"count": len(codes)},
    )
    return RecoveryCodes(recovery_codes=codes)


@router.post("/mfa/webauthn/options", response_model=WebAuthnRegistrationOptions)
async def webauthn_registration_options(
    principal: SignedIn, session: DBSession, runtime: Rt
) -> WebAuthnRegistrationOptions:
    """Options for `navigator.credentials.create()` to register a passkey or security key."""
    account = await get_account(session, subject_id(principal))
    ceremony, options = await webauthn.registration_options(session, runtime, account, account.username or "customer")
    return WebAuthnRegistrationOptions(ceremony_id=ceremony, options=options)


@router.post("/mfa/webauthn", response_model=WebAuthnRegistered, status_code=status.HTTP_201_CREATED)
async def webauthn_register(
    body: WebAuthnRegistration, principal: SignedIn, session: DBSession, runtime: Rt
) -> WebAuthnRegistered:
    """Register the credential the authenticator created for the ceremony."""
    account = await get_account(session, subject_id(principal))
    credential_id = await webauthn.register(
        session, runtime, account, body.ceremony_id, credential=body.credential, label=body.label
    )
    codes = await _first_factor_codes(session, runtime, account.id)
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="mfa.webauthn_registered",
        target=principal.subject,
        detail={},
    )
    return WebAuthnRegistered(credential_id=bytes_to_base64url(credential_id), recovery_codes=codes)


@router.post("/step-up/send", response_model=Factors)
async def step_up_send(body: StepUpSend, principal: SignedIn, session: DBSession, runtime: Rt) -> Factors:
    """Send an SMS or email code to confirm one action."""
    account = await get_account(session, subject_id(principal))
    await service.send_code(session, runtime, account, purpose=f"step_up:{body.action}", channel=body.channel)
    return Factors(factors=[body.channel])


@router.post("/step-up/webauthn-options", response_model=WebAuthnRegistrationOptions)
async def step_up_webauthn_options(principal: SignedIn, session: DBSession, runtime: Rt) -> WebAuthnRegistrationOptions:
    """Options for `navigator.credentials.get()` to confirm an action with a security key."""
    account_id = subject_id(principal)
    raw, options = await webauthn.authentication_options(session, runtime, account_id)
    pending = PendingChallenge(
        account_id=account_id,
        purpose=STEP_UP_CEREMONY,
        challenge=raw,
        expires_at=datetime.now(UTC) + timedelta(seconds=webauthn.CHALLENGE_SECONDS),
    )
    session.add(pending)
    await session.flush()
    return WebAuthnRegistrationOptions(ceremony_id=pending.id, options=options)


async def _verified_step_up(session: DBSession, runtime: Runtime, account_id: uuid.UUID, body: StepUpRequest) -> bool:
    if body.method == "otp" and body.code:
        return await service.verify_totp(session, runtime, account_id, body.code)
    if body.method in ("sms", "email") and body.code:
        try:
            await service.verify_code(session, runtime, account_id, f"step_up:{body.action}", body.code)
        except InvalidCode:
            return False
        return True
    if body.method == "recovery" and body.code:
        return await service.use_recovery_code(session, account_id, body.code)
    if body.method == "webauthn" and body.credential is not None:
        pending = await session.scalar(
            select(PendingChallenge)
            .where(
                PendingChallenge.account_id == account_id,
                PendingChallenge.purpose == STEP_UP_CEREMONY,
                PendingChallenge.used_at.is_(None),
                PendingChallenge.expires_at > datetime.now(UTC),
            )
            .order_by(PendingChallenge.expires_at.desc())
            .limit(1)
            .with_for_update()
        )
        if pending is None:
            raise WebAuthnFailed("ask for step-up options first")
        pending.used_at = datetime.now(UTC)
        return await webauthn.verify_assertion(session, runtime, account_id, pending.challenge, body.credential)
    return False


@router.post("/step-up", response_model=StepUpGranted, status_code=status.HTTP_201_CREATED)
async def step_up(
    body: StepUpRequest, request: Request, principal: SignedIn, session: DBSession, runtime: Rt
) -> StepUpGranted:
    """Prove a fresh second factor for one action of this session; the grant expires in minutes and is used once.

    Wrong answers count toward the account's lockout, like wrong passwords: a stolen session cannot
    guess codes without limit."""
    account_id = subject_id(principal)
    async with keep_failures(session):
        if not await _verified_step_up(session, runtime, account_id, body):
            account = await get_account(session, account_id, for_update=True)
            await register_failure(session, runtime, account, login_context(request, runtime, None))
            raise InvalidCode()
    grant = await service.grant_step_up(
        session, runtime, account_id, session_id=session_id(principal), action=body.action, method=body.method
    )
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="mfa.step_up",
        target=principal.subject,
        detail={"for": body.action, "method": body.method, "grant": str(grant.id)},
    )
    return StepUpGranted(id=grant.id, action=grant.action, method=grant.method, expires_at=grant.expires_at)


@router.post("/password", response_model=PasswordChanged)
async def change_password(
    body: PasswordChange, principal: SignedIn, session: DBSession, runtime: Rt
) -> PasswordChanged:
    """Change my password: the current one plus a step-up for `password.change`. Other sessions are revoked
    and the holder is notified. (A one-time or expired password is replaced during login instead:
    `POST /public/login/password`.)"""
    account = await get_account(session, subject_id(principal), for_update=True)
    if not await runtime.passwords.verify(account.password_hash, body.current_password):
        raise InvalidCredentials("the current password is wrong")
    await service.consume_step_up(session, account.id, session_id(principal), "password.change")
    revoked = await set_password(
        session,
        runtime,
        account,
        body.new_password,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="password.changed",
        keep_session=session_id(principal),
    )
    return PasswordChanged(changed=True, other_sessions_revoked=revoked)
