"""WebAuthn / passkeys: the "biometric" and "hardware token" factors, phishing-resistant.

A passkey is a second factor (aal2). It gives aal3 (NIST SP 800-63B: hardware-bound, verifier-impersonation
resistant) only when its registration was attested by an authenticator on the AAGUID allow-list
(``webauthn_aal3_aaguids``) with an attestation that chains to a configured vendor root, the credential is
device-bound (not a synced passkey), and the assertion verified the user (issue 13 item 19). An assertion
without user verification still counts as the possession factor.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)

from services.identity.errors import WebAuthnFailed
from services.identity.models import Account, PendingChallenge, WebAuthnCredential
from services.identity.runtime import Runtime

REGISTER = "webauthn.register"
CHALLENGE_SECONDS = 300
#: The amr value of an assertion by an attested hardware authenticator that verified the user (RFC 8176).
HARDWARE_KEY = "hwk"


def _roots(runtime: Runtime) -> dict[AttestationFormat, list[bytes]] | None:
    paths = runtime.settings.webauthn_attestation_roots
    if not paths:
        return None
    pems = [Path(p).read_bytes() for p in paths]
    formats = (
        AttestationFormat.PACKED,
        AttestationFormat.TPM,
        AttestationFormat.ANDROID_KEY,
        AttestationFormat.FIDO_U2F,
    )
    return dict.fromkeys(formats, pems)


def _aal3_possible(runtime: Runtime) -> bool:
    return bool(runtime.settings.webauthn_aal3_aaguids and runtime.settings.webauthn_attestation_roots)


async def _descriptors(session: AsyncSession, account_id: uuid.UUID) -> list[PublicKeyCredentialDescriptor]:
    ids = (
        await session.scalars(
            select(WebAuthnCredential.credential_id).where(WebAuthnCredential.account_id == account_id)
        )
    ).all()
    return [PublicKeyCredentialDescriptor(id=raw) for raw in ids]


async def registration_options(
    session: AsyncSession, runtime: Runtime, account: Account, label: str
) -> tuple[uuid.UUID, dict[str, Any]]:
    settings = runtime.settings
    options = generate_registration_options(
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        user_name=label,
        user_id=account.id.bytes,
        exclude_credentials=await _descriptors(session, account.id),
        attestation=(
            AttestationConveyancePreference.DIRECT if _aal3_possible(runtime) else AttestationConveyancePreference.NONE
        ),
    )
    pending = PendingChallenge(
        account_id=account.id,
        purpose=REGISTER,
        challenge=options.challenge,
        expires_at=datetime.now(UTC) + timedelta(seconds=CHALLENGE_SECONDS),
    )
    session.add(pending)
    await session.flush()
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return pending.id, parsed


async def _take_pending(
    session: AsyncSession, account_id: uuid.UUID, pending_id: uuid.UUID, purpose: str
) -> PendingChallenge:
    now = datetime.now(UTC)
    pending = await session.scalar(
        select(PendingChallenge)
        .where(
            PendingChallenge.id == pending_id,
            PendingChallenge.account_id == account_id,
            PendingChallenge.purpose == purpose,
            PendingChallenge.used_at.is_(None),
            PendingChallenge.expires_at > now,
        )
        .with_for_update()
    )
    if pending is None:
        raise WebAuthnFailed("the ceremony is unknown, used or expired")
    pending.used_at = now
    return pending


async def register(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    pending_id: uuid.UUID,
    *,
    credential: dict[str, Any],
    label: str | None,
) -> bytes:
    pending = await _take_pending(session, account.id, pending_id, REGISTER)
    settings = runtime.settings
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=pending.challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
            pem_root_certs_bytes_by_fmt=_roots(runtime),
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnFailed("the security key registration was not accepted") from exc
    allowed = {a.lower() for a in settings.webauthn_aal3_aaguids}
    hardware = (
        _aal3_possible(runtime)
        and verified.fmt != AttestationFormat.NONE
        and verified.aaguid.lower() in allowed
        and verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
        and verified.user_verified
    )
    session.add(
        WebAuthnCredential(
            credential_id=verified.credential_id,
            account_id=account.id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            label=label,
            aaguid=verified.aaguid,
            hardware=hardware,
        )
    )
    await session.flush()
    return verified.credential_id


async def authentication_options(
    session: AsyncSession, runtime: Runtime, account_id: uuid.UUID
) -> tuple[bytes, dict[str, Any]]:
    options = generate_authentication_options(
        rp_id=runtime.settings.webauthn_rp_id, allow_credentials=await _descriptors(session, account_id)
    )
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return options.challenge, parsed


async def verify_assertion(
    session: AsyncSession,
    runtime: Runtime,
    account_id: uuid.UUID,
    expected_challenge: bytes | None,
    credential: dict[str, Any],
) -> list[str] | None:
    """The amr values an assertion earns (``webauthn``, plus ``hwk`` for an attested hardware key that
    verified the user), or None unless it is signed by one of the account's keys over our challenge.

    A signature counter that does not grow (when the authenticator keeps one)
    means a cloned key: refused.
    """
    if expected_challenge is None:
        return None
    try:
        raw_id = base64url_to_bytes(str(credential["rawId"]))
    except (KeyError, ValueError, TypeError):
        return None
    stored = await session.scalar(
        select(WebAuthnCredential)
        .where(WebAuthnCredential.credential_id == raw_id, WebAuthnCredential.account_id == account_id)
        .with_for_update()
    )
    if stored is None:
        return None
    settings = runtime.settings
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=settings.webauthn_rp_id,
            expected_origin=list(settings.webauthn_origins),
            credential_public_key=stored.public_key,
            credential_current_sign_count=stored.sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
        return None
    await session.execute(
        update(WebAuthnCredential)
        .where(WebAuthnCredential.credential_id == raw_id)
        .values(sign_count=verified.new_sign_count, last_used_at=datetime.now(UTC))
    )
    if stored.hardware and verified.user_verified:
        return ["webauthn", HARDWARE_KEY]
    return ["webauthn"]
