"""Access tokens, JWKS and rotation, refresh rotation with reuse detection, service tokens, the revocation feed."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import select, update

from services.identity.config import IdentitySettings
from services.identity.models import Account, AccountStatus, RefreshToken, Session, audit_log
from services.identity.runtime import Runtime
from services.identity.tokens.keys import rotate
from tests.identity.support import DEV_SECRET, bearer, service_token, signed_in


async def _verify(client: httpx.AsyncClient, token: str) -> dict[str, object]:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims: dict[str, object] = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["EdDSA"], audience="bank-suite", issuer="bank-suite-identity"
    )
    return claims


async def test_access_token_verifies_against_the_jwks_with_the_contract_claims(client: httpx.AsyncClient) -> None:
    account_id, _, tokens = await signed_in(client)
    claims = await _verify(client, tokens["access_token"])
    assert claims["sub"] == account_id
    assert claims["kind"] == "customer"
    assert claims["sid"] == tokens["session_id"]
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "aal1"
    assert 300 <= int(claims["exp"]) - int(claims["iat"]) <= 900  # type: ignore[call-overload]
    assert claims["jti"]
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "EdDSA"


async def test_jwks_holds_public_keys_only(client: httpx.AsyncClient) -> None:
    for key in (await client.get("/.well-known/jwks.json")).json()["keys"]:
        assert set(key) <= {"kty", "crv", "x", "kid", "alg", "use"}


async def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    _, _, before = await signed_in(client)
    runtime: Runtime = identity_app.state.identity
    async with identity_app.state.database.sessionmaker() as session:
        new = await rotate(session, runtime.keyring.signing, runtime.settings.signing_key_overlap_seconds)
        await session.commit()
    await runtime.keys.reload()
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    assert {old_kid, new.kid} <= kids
    # A token signed before the rotation still works, a new one carries the new kid.
    assert (await client.get("/me/account", headers=bearer(before["access_token"]))).status_code == 200
    refreshed = await client.post("/public/token/refresh", json={"refresh_token": before["refresh_token"]})
    assert jwt.get_unverified_header(refreshed.json()["access_token"])["kid"] == new.kid
    await _verify(client, refreshed.json()["access_token"])


async def test_signing_keys_are_encrypted_at_rest(identity_app: FastAPI) -> None:
    from sqlalchemy import select

    from services.identity.models import SigningKey

    async with identity_app.state.database.sessionmaker() as session:
        key = (await session.scalars(select(SigningKey).limit(1))).one()
    assert len(key.private_key_enc) > 32 + 12  # nonce + ciphertext + tag, not the 32 raw bytes
    assert "d" not in key.public_jwk


async def test_refresh_rotates_and_reuse_revokes_the_whole_session(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    first = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["session_id"] == tokens["session_id"]
    replay = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # The thief's replay killed the legitimate holder's newer tokens too.
    after = await client.post("/public/token/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401
    assert (await client.get("/me/account", headers=bearer(rotated["access_token"]))).status_code == 401


async def test_concurrent_use_of_one_refresh_token_is_a_reuse(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    results = await asyncio.gather(
        *(client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(5))
    )
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401, 401]
    winner = next(r for r in results if r.status_code == 200).json()
    assert (
        await client.post("/public/token/refresh", json={"refresh_token": winner["refresh_token"]})
    ).status_code == 401


async def _refresh_state(app: FastAPI, session_id: str) -> tuple[list[tuple[bool, bool]], str | None, list[str]]:
    """(used?, expired?) of the session's refresh tokens, its revoke reason, and the session audit actions."""
    async with app.state.database.sessionmaker() as session:
        tokens = (
            await session.execute(
                select(RefreshToken.used_at.is_not(None), RefreshToken.expires_at <= datetime.now(UTC))
                .where(RefreshToken.session_id == uuid.UUID(session_id))
                .order_by(RefreshToken.issued_at)
            )
        ).all()
        reason = await session.scalar(select(Session.revoke_reason).where(Session.id == uuid.UUID(session_id)))
        actions = (
            await session.scalars(
                select(audit_log.entries.c.action)
                .where(audit_log.entries.c.target == session_id)
                .order_by(audit_log.entries.c.seq)
            )
        ).all()
    return [(bool(u), bool(e)) for u, e in tokens], reason, list(actions)


async def test_refused_rotations_write_nothing_and_a_reuse_is_audited(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    # The rotation is one statement that only writes when every condition holds: check each refusal.
    _, _, tokens = await signed_in(client)
    sid = tokens["session_id"]
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.session_id == uuid.UUID(sid))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    expired = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (expired.status_code, expired.json()["code"]) == (401, "invalid_refresh_token")
    assert await _refresh_state(identity_app, sid) == ([(False, True)], None, ["login.succeeded"])

    account_id, _, tokens = await signed_in(client)
    sid = tokens["session_id"]
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(Account).where(Account.id == uuid.UUID(account_id)).values(status=AccountStatus.frozen.value)
        )
        await session.commit()
    frozen = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (frozen.status_code, frozen.json()["code"]) == (401, "invalid_refresh_token")
    assert await _refresh_state(identity_app, sid) == ([(False, False)], None, ["login.succeeded"])

    _, _, tokens = await signed_in(client)
    sid = tokens["session_id"]
    assert (await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})).is_success
    replay = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.json()["code"] == "refresh_token_reused"
    assert await _refresh_state(identity_app, sid) == (
        [(True, False), (False, False)],
        "refresh_token_reuse",
        ["login.succeeded", "session.revoked"],
    )


async def test_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/public/token/refresh", json={"refresh_token": "A" * 43})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_refresh_token"


async def test_logout_ends_the_session_at_once(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    assert (await client.post("/me/logout", headers=bearer(tokens["access_token"]))).status_code == 200
    assert (await client.get("/me/account", headers=bearer(tokens["access_token"]))).status_code == 401
    refresh = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_list_and_revoke_sessions(client: httpx.AsyncClient) -> None:
    from tests.identity.support import login

    _, data, first = await signed_in(client)
    second = (await login(client, data["phone"], data["password"])).json()
    listed = (await client.get("/me/sessions", headers=bearer(first["access_token"]))).json()
    assert {s["id"] for s in listed} == {first["session_id"], second["session_id"]}
    assert [s["current"] for s in listed if s["id"] == first["session_id"]] == [True]
    revoked = await client.delete(f"/me/sessions/{second['session_id']}", headers=bearer(first["access_token"]))
    assert revoked.status_code == 200
    assert (await client.get("/me/account", headers=bearer(second["access_token"]))).status_code == 401
    third = (await login(client, data["phone"], data["password"])).json()
    all_gone = await client.post("/me/sessions/revoke-all", headers=bearer(third["access_token"]))
    assert all_gone.json() == {"revoked": 2}
    assert (await client.get("/me/account", headers=bearer(first["access_token"]))).status_code == 401


async def test_cannot_revoke_someone_elses_session(client: httpx.AsyncClient) -> None:
    _, _, mine = await signed_in(client)
    _, _, theirs = await signed_in(client)
    response = await client.delete(f"/me/sessions/{theirs['session_id']}", headers=bearer(mine["access_token"]))
    assert response.status_code == 404
    assert (await client.get("/me/account", headers=bearer(theirs["access_token"]))).status_code == 200


async def _forge(header: dict[str, str], claims: dict[str, object], key: bytes | None) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if key is None:
        return signing_input + "."
    import hashlib
    import hmac

    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


async def test_forged_tokens_are_refused(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
    jwk = (await client.get("/.well-known/jwks.json")).json()["keys"][0]
    forged = [
        await _forge({"alg": "none", "kid": kid}, claims, None),
        await _forge({"alg": "HS256", "kid": kid}, claims, json.dumps(jwk).encode()),
        jwt.encode(
            {**claims, "sub": str(uuid.uuid4())}, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
        ),
        tokens["access_token"][:-4] + "AAAA",
    ]
    for token in forged:
        response = await client.get("/me/account", headers=bearer(token))
        assert response.status_code == 401, token


@pytest.mark.parametrize(("field", "value"), [("aud", "other-app"), ("iss", "someone-else"), ("exp", 1_000_000_000)])
async def test_tokens_with_wrong_audience_issuer_or_expiry_are_refused(
    client: httpx.AsyncClient, identity_app: FastAPI, field: str, value: object
) -> None:
    _, _, tokens = await signed_in(client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims[field] = value
    runtime: Runtime = identity_app.state.identity
    token = await runtime.keys.sign(claims)
    assert (await client.get("/me/account", headers=bearer(token))).status_code == 401


async def test_client_credentials_grant(client: httpx.AsyncClient) -> None:
    token = await service_token(client, client_id="incidents")
    claims = await _verify(client, token)
    assert (claims["sub"], claims["kind"]) == ("incidents", "service")
    assert "sid" not in claims


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        (
            {"grant_type": "client_credentials", "client_id": "risk", "client_secret": "wrong-secret"},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": DEV_SECRET},
            401,
            "invalid_client",
        ),
        ({"grant_type": "password", "client_id": "risk", "client_secret": DEV_SECRET}, 400, "unsupported_grant_type"),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "risk",
                "client_secret": DEV_SECRET,
                "scope": "vault:decrypt",
            },
            400,
            "invalid_scope",
        ),
    ],
)
async def test_client_credentials_refusals(
    client: httpx.AsyncClient, form: dict[str, str], status: int, code: str
) -> None:
    response = await client.post("/public/oauth/token", data=form)
    assert (response.status_code, response.json()["code"]) == (status, code)


async def test_token_endpoint_wants_a_form(client: httpx.AsyncClient) -> None:
    response = await client.post("/public/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400


async def test_revocation_feed_follows_revoked_sessions(client: httpx.AsyncClient) -> None:
    token = await service_token(client, client_id="gateway")
    start = (await client.get("/internal/revocations", headers=bearer(token))).json()
    _, _, tokens = await signed_in(client)
    await client.post("/me/logout", headers=bearer(tokens["access_token"]))
    page = (await client.get("/internal/revocations", params={"after": start["cursor"]}, headers=bearer(token))).json()
    assert tokens["session_id"] in [r["session_id"] for r in page["revocations"]]
    entry = next(r for r in page["revocations"] if r["session_id"] == tokens["session_id"])
    assert entry["expires_at"] > entry["revoked_at"]
    again = (await client.get("/internal/revocations", params={"after": page["cursor"]}, headers=bearer(token))).json()
    assert tokens["session_id"] not in [r["session_id"] for r in again["revocations"]]
    everything = (await client.get("/internal/revocations", headers=bearer(token))).json()
    assert tokens["session_id"] in [r["session_id"] for r in everything["revocations"]]


async def test_revocation_feed_is_for_services_only(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    assert (await client.get("/internal/revocations", headers=bearer(tokens["access_token"]))).status_code == 403
    assert (await client.get("/internal/revocations")).status_code == 401


async def test_service_token_lifetime(client: httpx.AsyncClient) -> None:
    claims = await _verify(client, await service_token(client))
    lifetime = int(claims["exp"]) - int(claims["iat"])  # type: ignore[call-overload]
    assert lifetime == IdentitySettings.model_fields["service_token_ttl_seconds"].default


async def test_revocation_feed_refuses_a_made_up_cursor(client: httpx.AsyncClient) -> None:
    token = await service_token(client, client_id="gateway")
    response = await client.get("/internal/revocations", params={"after": "not-a-cursor"}, headers=bearer(token))
    assert response.status_code == 400
