"""Enrolment of second factors, step-up, and password change (for any signed-in person)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, status
from sqlalchemy import select
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from kit.db import DBSession
from kit.errors import SuiteError
from services.identity.accounts.service import get_account, has_contact
from services.identity.deps import SignedIn, keep_failures, login_context, session_id, subject_id
from services.identity.errors import (
    AccountLocked,
    FactorNotAvailable,
    InvalidCode,
    PayloadHashRequired,
    ReauthenticationRequired,
    WebAuthnFailed,
    WrongCurrentPassword,
)
from services.identity.login.service import register_failure
from services.identity.mfa import service, webauthn
from services.identity.mfa.schemas import (
    CodeRequest,
    FactorChangeProof,
    Factors,
    PasskeyView,
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
from services.identity.models import Account, CustomerProfile, PendingChallenge, audit_log
from services.identity.notifications.service import notify_verified_channels
from services.identity.passwords.service import set_password
from services.identity.runtime import Rt, Runtime
from services.identity.vault import Purpose

router = APIRouter(prefix="/me", tags=["second factors"])

Proof = Annotated[
    FactorChangeProof | None,
    Body(examples=[{"current_password": "Correct-Horse-42-Battery"}]),
]

STEP_UP_CEREMONY = "webauthn.step_up"


async def _contacts(session: DBSession, runtime: Runtime, account: Account) -> set[str]:
    """The code channels the account has (identity's own indexes: no vault call)."""
    return {c for c in ("sms", "email") if has_contact(account, c)}


async def _first_factor_codes(session: DBSession, runtime: Runtime, account_id: uuid.UUID) -> list[str] | None:
    if await service.has_recovery_codes(session, account_id):
        return None
    return await service.new_recovery_codes(session, runtime, account_id)


async def totp_label(session: DBSession, runtime: Runtime, account: Account) -> str:
    """The account name the authenticator app shows: a staff member's user name, a customer's masked phone
    (else masked e-mail) as the vault masks it, so the holder tells their entries apart and a glance at the
    phone reveals nothing (issue 12 item 6)."""
    if account.username:
        return account.username
    profile = await session.get(CustomerProfile, account.id)
    if profile is not None and profile.vault_record_id is not None:
        with contextlib.suppress(SuiteError):
            values = await runtime.vault.read(
                profile.vault_record_id, ["phone", "email"], Purpose.authentication, unmasked=False
            )
            for field in ("phone", "email"):
                if values.get(field):
                    return values[field]
    return "customer"


def _locked(account: Account) -> bool:
    return account.locked_until is not None and account.locked_until > datetime.now(UTC)


async def _authorise_factor_change(
    request: Request, principal: SignedIn, session: DBSession, runtime: Runtime, proof: FactorChangeProof | None
) -> Account:
    """Adding or removing a second factor (issue 13 item 1: a stolen aal1 session must not take the account).

    Allowed for a login at aal2 or above made within ``factor_change_fresh_login_seconds``; otherwise the
    current password (a wrong one counts toward the lockout) and a step-up for ``mfa.change`` in this
    session (an account with no second factor at all, e.g. a new staff member, has nothing to step up with:
    its password is the proof).
    """
    account = await get_account(session, subject_id(principal), for_update=True)
    if _locked(account):
        raise AccountLocked()
    sid = session_id(principal)
    if await service.fresh_strong_login(session, runtime, sid):
        return account
    password = proof.current_password if proof is not None else None
    if password is None:
        raise ReauthenticationRequired(
            "give current_password and step up for mfa.change first (or log in again with a second factor)",
            action=service.FACTOR_CHANGE,
        )
    async with keep_failures(session):
        if not await runtime.passwords.verify(account.password_hash, password):
            await register_failure(session, runtime, account, login_context(request, runtime, None))
            raise WrongCurrentPassword()
    if await service.has_second_factor(session, account):
        await service.consume_step_up(session, account.id, sid, service.FACTOR_CHANGE)
    return account


async def _factor_changed(
    session: DBSession, runtime: Runtime, principal: SignedIn, account: Account, *, action: str, what: str
) -> None:
    """Audit a change of factors and tell the holder on every verified channel."""
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action=action,
        target=str(account.id),
        detail={},
    )
    await notify_verified_channels(
        session,
        runtime,
        account,
        template="alert.factor_changed",
        body=f"Bank Suite: {what} on your account. If this was not you, contact the bank now.",
    )


@router.get("/mfa", response_model=Factors)
async def my_factors(principal: SignedIn, session: DBSession, runtime: Rt) -> Factors:
    """The second factors available to me, strongest first."""
    account = await get_account(session, subject_id(principal))
    return Factors(
        factors=await service.available_factors(session, account.id, await _contacts(session, runtime, account))
    )


@router.post("/mfa/totp", response_model=TotpEnrolmentResponse, status_code=status.HTTP_201_CREATED)
async def enrol_totp(
    request: Request, principal: SignedIn, session: DBSession, runtime: Rt, body: Proof = None
) -> TotpEnrolmentResponse:
    """Start enrolling an authenticator app: scan the QR code (or enter the secret), then confirm a code.

    Adding a factor needs a login at aal2 within the last minutes, or `current_password` and a step-up
    for `mfa.change` (`403 reauthentication_required`, `403 wrong_current_password`, `403 step_up_required`).
    """
    account = await _authorise_factor_change(request, principal, session, runtime, body)
    label = await totp_label(session, runtime, account)
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
    account = await get_account(session, account_id)
    await _factor_changed(
        session, runtime, principal, account, action="mfa.totp_enrolled", what="An authenticator app was added"
    )
    return TotpConfirmed(confirmed=True, recovery_codes=codes)


@router.delete("/mfa/totp", response_model=Factors)
async def remove_totp(
    request: Request, principal: SignedIn, session: DBSession, runtime: Rt, body: Proof = None
) -> Factors:
    """Remove the authenticator app (a login at aal2 within the last minutes, or `current_password` and a
    step-up for `mfa.change`)."""
    account = await _authorise_factor_change(request, principal, session, runtime, body)
    if not await service.remove_totp(session, account.id):
        raise FactorNotAvailable("no authenticator app is enrolled")
    await _factor_changed(
        session, runtime, principal, account, action="mfa.totp_removed", what="An authenticator app was removed"
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
    await _factor_changed(
        session,
        runtime,
        principal,
        await get_account(session, account_id),
        action="mfa.recovery_codes_issued",
        what="New recovery codes were issued",
    )
    return RecoveryCodes(recovery_codes=codes)


@router.post("/mfa/webauthn/options", response_model=WebAuthnRegistrationOptions)
async def webauthn_registration_options(
    request: Request, principal: SignedIn, session: DBSession, runtime: Rt, body: Proof = None
) -> WebAuthnRegistrationOptions:
    """Options for `navigator.credentials.create()` to register a passkey or security key. Adding a factor
    needs a login at aal2 within the last minutes, or `current_password` and a step-up for `mfa.change`."""
    account = await _authorise_factor_change(request, principal, session, runtime, body)
    ceremony, options = await webauthn.registration_options(session, runtime, account, account.username or "customer")
    return WebAuthnRegistrationOptions(ceremony_id=ceremony, options=options)


@router.get("/mfa/webauthn", response_model=list[PasskeyView])
async def my_passkeys(principal: SignedIn, session: DBSession) -> list[PasskeyView]:
    """My passkeys and security keys (to recognise one I did not add, and remove it)."""
    return [
        PasskeyView(
            credential_id=bytes_to_base64url(c.credential_id),
            label=c.label,
            created_at=c.created_at,
            last_used_at=c.last_used_at,
        )
        for c in await service.passkeys(session, subject_id(principal))
    ]


@router.delete("/mfa/webauthn/{credential_id}", response_model=Factors)
async def remove_passkey(
    credential_id: Annotated[str, Path(min_length=1, max_length=1400, pattern=r"^[A-Za-z0-9_-]+$")],
    *,
    request: Request,
    principal: SignedIn,
    session: DBSession,
    runtime: Rt,
    body: Proof = None,
) -> Factors:
    """Remove a passkey (a login at aal2 within the last minutes, or `current_password` and a step-up for
    `mfa.change`); the holder's verified channels are told."""
    account = await _authorise_factor_change(request, principal, session, runtime, body)
    try:
        raw = base64url_to_bytes(credential_id)
    except ValueError as exc:
        raise FactorNotAvailable("no such passkey") from exc
    if not await service.remove_passkey(session, account.id, raw):
        raise FactorNotAvailable("no such passkey")
    await _factor_changed(
        session, runtime, principal, account, action="mfa.webauthn_removed", what="A passkey was removed"
    )
    return Factors(
        factors=await service.available_factors(session, account.id, await _contacts(session, runtime, account))
    )


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
    await _factor_changed(
        session, runtime, principal, account, action="mfa.webauthn_registered", what="A passkey was added"
    )
    return WebAuthnRegistered(credential_id=bytes_to_base64url(credential_id), recovery_codes=codes)


@router.post("/step-up/send", response_model=Factors)
async def step_up_send(body: StepUpSend, principal: SignedIn, session: DBSession, runtime: Rt) -> Factors:
    """Send an SMS or email code to confirm one action."""
    account = await get_account(session, subject_id(principal))
    if _locked(account):
        raise AccountLocked()
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
        return await service.use_recovery_code(session, runtime, account_id, body.code)
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
        return (
            await webauthn.verify_assertion(session, runtime, account_id, pending.challenge, body.credential)
            is not None
        )
    return False


@router.post("/step-up", response_model=StepUpGranted, status_code=status.HTTP_201_CREATED)
async def step_up(
    body: StepUpRequest, request: Request, principal: SignedIn, session: DBSession, runtime: Rt
) -> StepUpGranted:
    """Prove a fresh second factor for one action of this session; the grant expires in minutes and is used once.

    Wrong answers count toward the account's lockout, like wrong passwords: a stolen session cannot
    guess codes without limit."""
    account_id = subject_id(principal)
    if body.action in service.BOUND_ACTIONS and body.payload_hash is None:
        raise PayloadHashRequired(f"a step-up for {body.action} names the payload it covers (payload_hash)")
    # A locked account steps up no more than it logs in (issue 13 item 11): the lock ends the guessing.
    if _locked(await get_account(session, account_id)):
        raise AccountLocked()
    async with keep_failures(session):
        if not await _verified_step_up(session, runtime, account_id, body):
            account = await get_account(session, account_id, for_update=True)
            await register_failure(session, runtime, account, login_context(request, runtime, None))
            raise InvalidCode()
    grant = await service.grant_step_up(
        session,
        runtime,
        account_id,
        session_id=session_id(principal),
        action=body.action,
        method=body.method,
        payload_hash=body.payload_hash,
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
    body: PasswordChange, request: Request, principal: SignedIn, session: DBSession, runtime: Rt
) -> PasswordChanged:
    """Change my password: the current one plus a step-up for `password.change`. Other sessions are revoked
    and the holder is notified. (A one-time or expired password is replaced during login instead:
    `POST /public/login/password`.)"""
    account = await get_account(session, subject_id(principal), for_update=True)
    if _locked(account):
        raise AccountLocked()
    # The step-up first: each guess of the current password costs a fresh second factor, and a wrong one
    # counts toward the lockout like a wrong password at login (issue 13 item 10). A wrong current password
    # is a 403 (`wrong_current_password`), never a 401: the session itself is valid (issue 12 item 6).
    await service.consume_step_up(session, account.id, session_id(principal), "password.change")
    async with keep_failures(session):
        if not await runtime.passwords.verify(account.password_hash, body.current_password):
            await register_failure(session, runtime, account, login_context(request, runtime, None))
            raise WrongCurrentPassword()
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
