"""WebAuthn / passkeys: the "biometric" and "hardware token" factors, phishing-resistant (aal3)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
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
from webauthn.helpers.structs import PublicKeyCredentialDescriptor

from services.identity.errors import WebAuthnFailed
from services.identity.models import Account, PendingChallenge, WebAuthnCredential
from services.identity.runtime import Runtime

REGISTER = "webauthn.register"
CHALLENGE_SECONDS = 300


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
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnFailed("the security key registration was not accepted") from exc
    session.add(
        WebAuthnCredential(
            credential_id=verified.credential_id,
            account_id=account.id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            label=label,
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
) -> bool:
    """True when the assertion is signed by one of the account's keys over our challenge.

    A signature counter that does not grow (when the authenticator keeps one)
    means a cloned key: refused.
    """
    if expected_challenge is None:
        return False
    try:
        raw_id = base64url_to_bytes(str(credential["rawId"]))
    except (KeyError, ValueError, TypeError):
        return False
    stored = await session.scalar(
        select(WebAuthnCredential)
        .where(WebAuthnCredential.credential_id == raw_id, WebAuthnCredential.account_id == account_id)
        .with_for_update()
    )
    if stored is None:
        return False
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
        return False
    await session.execute(
        update(WebAuthnCredential)
        .where(WebAuthnCredential.credential_id == raw_id)
        .values(sign_count=verified.new_sign_count, last_used_at=datetime.now(UTC))
    )
    return True
