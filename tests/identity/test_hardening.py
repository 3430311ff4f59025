"""Issue 13 items 11 (step-up ignores the lock), 14 (notification rows kept forever), 15 (no cap on code
sends), 16 (a step-up covers any large transfer; localhost relying party; unsalted recovery codes) and 19
(a software passkey yields aal3), replayed from the attacker's side."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from sqlalchemy import func, select, update

from kit.permissions import payload_hash
from services.identity.config import IdentitySettings
from services.identity.models import Account, Notification, RecoveryCode
from services.identity.runtime import Runtime
from tests.identity.authenticator import SoftAuthenticator
from tests.identity.support import (
    bearer,
    factor_change_proof,
    latest_code,
    login,
    service_token,
    signed_in,
    sink,
)


async def _sms_step_up(
    client: httpx.AsyncClient, account_id: str, token: str, action: str, **extra: Any
) -> httpx.Response:
    await client.post("/me/step-up/send", json={"action": action, "channel": "sms"}, headers=bearer(token))
    code = await latest_code(client, account_id, f"code.step_up:{action}")
    return await client.post(
        "/me/step-up", json={"action": action, "method": "sms", "code": code, **extra}, headers=bearer(token)
    )


async def test_a_locked_account_cannot_step_up(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, _, tokens = await signed_in(client)
    token = tokens["access_token"]
    await client.post("/me/step-up/send", json={"action": "account.close", "channel": "sms"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:account.close")
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(Account)
            .where(Account.id == uuid.UUID(account_id))
            .values(locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15))
        )
        await session.commit()
    # The right code, but the account is locked: no grant, and no new code either.
    right = await client.post(
        "/me/step-up", json={"action": "account.close", "method": "sms", "code": code}, headers=bearer(token)
    )
    assert (right.status_code, right.json()["code"]) == (403, "account_locked")
    resend = await client.post(
        "/me/step-up/send", json={"action": "account.close", "channel": "sms"}, headers=bearer(token)
    )
    assert resend.json()["code"] == "account_locked"


async def test_code_sends_are_capped_per_account_per_day(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data, _ = await signed_in(client)
    runtime: Runtime = identity_app.state.identity
    cap = runtime.settings.code_sends_per_account_per_day
    for _ in range(cap):
        answer = await client.post("/public/password/reset/start", json={"identifier": data["phone"], "channel": "sms"})
        assert answer.status_code == 202
    async with identity_app.state.database.sessionmaker() as session:
        from services.identity.models import OneTimeCode

        sent = await session.scalar(select(func.count()).where(OneTimeCode.account_id == uuid.UUID(account_id)))
    assert sent == cap  # the registration's codes and the resets up to the cap, no more
    # The public answer stays the same past the cap (it says nothing about the account).
    answer = await client.post("/public/password/reset/start", json={"identifier": data["phone"], "channel": "sms"})
    assert answer.status_code == 202


async def test_a_large_transfer_step_up_covers_one_transfer(client: httpx.AsyncClient) -> None:
    account_id, _, tokens = await signed_in(client)
    token = tokens["access_token"]
    unbound = await _sms_step_up(client, account_id, token, "transfer.large")
    assert (unbound.status_code, unbound.json()["code"]) == (400, "payload_hash_required")
    mine = payload_hash({"to": "ACC-2", "amount_minor": 90_000_000})
    granted = await _sms_step_up(client, account_id, token, "transfer.large", payload_hash=mine)
    assert granted.status_code == 201, granted.text
    core = bearer(await service_token(client, client_id="risk"))
    other = payload_hash({"to": "ACC-666", "amount_minor": 90_000_000})
    body = {"account_id": account_id, "session_id": tokens["session_id"], "action": "transfer.large"}
    stolen = await client.post("/internal/step-up/consume", json={**body, "payload_hash": other}, headers=core)
    assert (stolen.status_code, stolen.json()["code"]) == (403, "step_up_required")
    blank = await client.post("/internal/step-up/consume", json=body, headers=core)
    assert blank.json()["code"] == "payload_hash_required"
    used = await client.post("/internal/step-up/consume", json={**body, "payload_hash": mine}, headers=core)
    assert used.json() == {"consumed": True, "method": "sms"}


def _strong_secrets() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in IdentitySettings.model_fields.items():
        if field.annotation is not None and "SecretStr" in str(field.annotation) and name != "database_url":
            values[name] = uuid.uuid4().hex * 2
    values["database_url"] = "postgresql+asyncpg://identity@db.example/suite?sslmode=verify-full"
    return values


def test_production_refuses_a_localhost_relying_party() -> None:
    with pytest.raises(ValueError, match="WebAuthn relying party"):
        IdentitySettings(environment="production", **_strong_secrets())
    settings = IdentitySettings(
        environment="production",
        webauthn_rp_id="bank.example",
        webauthn_origins=("https://bank.example",),
        **_strong_secrets(),
    )
    assert settings.webauthn_rp_id == "bank.example"


async def test_recovery_codes_are_stored_with_a_keyed_hash(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data, tokens = await signed_in(client)
    token = tokens["access_token"]
    proof = await factor_change_proof(client, token)
    started = (await client.post("/me/mfa/totp", json=proof, headers=bearer(token))).json()
    totp = pyotp.parse_uri(started["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    codes = (await client.post("/me/mfa/totp/confirm", json={"code": totp.now()}, headers=bearer(token))).json()[
        "recovery_codes"
    ]
    async with identity_app.state.database.sessionmaker() as session:
        stored = set(
            (
                await session.scalars(
                    select(RecoveryCode.code_hash).where(RecoveryCode.account_id == uuid.UUID(account_id))
                )
            ).all()
        )
    assert not stored & {hashlib.sha256(c.encode()).hexdigest() for c in codes}
    challenge = (await login(client, data["phone"])).json()
    done = await client.post(
        "/public/login/challenge/verify",
        json={"challenge": challenge["challenge"], "method": "recovery", "code": codes[0]},
    )
    assert done.status_code == 200, done.text


def _self_signed_root(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Attestation Root")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


async def test_a_software_passkey_is_aal2_even_with_its_aaguid_allow_listed(
    client: httpx.AsyncClient, identity_app: FastAPI, tmp_path: Path
) -> None:
    """A `none` attestation proves nothing about the authenticator: an allow-listed AAGUID it claims is not
    enough for aal3 (NIST SP 800-63B)."""
    runtime: Runtime = identity_app.state.identity
    original = runtime.settings
    runtime.settings = original.model_copy(
        update={
            "webauthn_aal3_aaguids": ("00000000-0000-0000-0000-000000000000",),
            "webauthn_attestation_roots": (str(_self_signed_root(tmp_path / "root.pem")),),
        }
    )
    try:
        _, data, tokens = await signed_in(client)
        token = tokens["access_token"]
        proof = await factor_change_proof(client, token)
        options = (await client.post("/me/mfa/webauthn/options", json=proof, headers=bearer(token))).json()
        assert options["options"]["attestation"] == "direct"
        key = SoftAuthenticator()
        registered = await client.post(
            "/me/mfa/webauthn",
            json={"ceremony_id": options["ceremony_id"], "credential": key.create(options["options"])},
            headers=bearer(token),
        )
        assert registered.status_code == 201, registered.text
        challenge = (await login(client, data["phone"])).json()
        assertion_options = (
            await client.post("/public/login/challenge/webauthn-options", json={"challenge": challenge["challenge"]})
        ).json()["options"]
        done = await client.post(
            "/public/login/challenge/verify",
            json={"challenge": challenge["challenge"], "method": "webauthn", "credential": key.get(assertion_options)},
        )
    finally:
        runtime.settings = original
    assert (done.json()["acr"], done.json()["amr"]) == ("aal2", ["pwd", "webauthn"])


async def test_notifications_are_purged_on_close_and_by_retention(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, _, tokens = await signed_in(client)
    assert await sink(client, account_id)
    # Retention: finished rows older than the retention go; pending and recent ones stay.
    other_id, _, _ = await signed_in(client)
    runtime: Runtime = identity_app.state.identity
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=runtime.settings.notification_retention_days + 1)
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(Notification)
            .where(Notification.account_id == uuid.UUID(other_id))
            .values(created_at=old, status="sink")
        )
        await session.commit()
    purged = await client.post(
        "/internal/login-log/purge", headers=bearer(await service_token(client, client_id="identity"))
    )
    assert purged.status_code == 200
    assert await sink(client, other_id) == []

    # Close: the account's notification rows (old contacts, bodies) go with it.
    token = tokens["access_token"]
    granted = await _sms_step_up(client, account_id, token, "account.close")
    assert granted.status_code == 201
    closed = await client.post("/customer/account/close", json={"reason": "moving"}, headers=bearer(token))
    assert closed.json()["status"] == "closed"
    async with identity_app.state.database.sessionmaker() as session:
        left = await session.scalar(select(func.count()).where(Notification.account_id == uuid.UUID(account_id)))
    assert left == 0
