"""Token verification and route policy at the gateway, from the attacker's side, over real HTTP.

identity's JWKS and revocation feed come from the stub upstream (tests/gateway/stub.py),
which stands in for identity's routes with tests.support.tokens.TestIssuer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import SERVICES
from tests.gateway.conftest import RunningGateway, Stub, gateway_settings, running_gateway
from tests.gateway.stub import StubState, serve, stub_app
from tests.support.tokens import AUDIENCE, ISSUER, TestIssuer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "kind": "customer",
        "sid": str(uuid.uuid4()),
        "acr": "aal2",
        "amr": ["pwd", "otp"],
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return base


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_invalid(gateway: RunningGateway, stub: Stub, token: str, code: str = "invalid_token") -> None:
    hits = stub.state.hits
    response = await gateway.client.get("/v1/identity/customer/profile", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == code
    assert stub.state.hits == hits, "a refused request must not reach the service"


async def test_valid_customer_token_is_forwarded_with_the_token(gateway: RunningGateway, issuer: TestIssuer) -> None:
    token = issuer.mint(kind="customer")
    response = await gateway.client.get("/v1/identity/customer/profile?x=1", headers=bearer(token))
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["path"] == "/customer/profile"
    assert echoed["query"] == "x=1"
    assert dict(echoed["headers"])["authorization"] == f"Bearer {token}"  # the service verifies it again


async def test_missing_token_is_401(gateway: RunningGateway, stub: Stub) -> None:
    response = await gateway.client.get("/v1/identity/customer/profile")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


async def test_forged_signature_is_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    forger = Ed25519PrivateKey.generate()
    token = jwt.encode(claims(), forger, algorithm="EdDSA", headers={"kid": issuer.kid})
    await assert_invalid(gateway, stub, token)


async def test_tampered_claims_are_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    head, _, signature = issuer.mint(kind="customer").split(".")
    tampered = b64(json.dumps(claims(kind="staff")).encode())
    await assert_invalid(gateway, stub, f"{head}.{tampered}.{signature}")


async def test_expired_token_is_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    # Expired well beyond the leeway (30 s).
    token = issuer.mint(kind="customer", extra={"iat": int(time.time()) - 900, "exp": int(time.time()) - 120})
    await assert_invalid(gateway, stub, token)


async def test_wrong_audience_is_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    await assert_invalid(gateway, stub, issuer.mint(kind="customer", extra={"aud": "another-bank"}))


async def test_wrong_issuer_is_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    await assert_invalid(gateway, stub, issuer.mint(kind="customer", extra={"iss": "https://evil.example"}))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer, alg: str) -> None:
    await assert_invalid(gateway, stub, unsigned({"alg": alg, "typ": "JWT", "kid": issuer.kid}, claims()))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hmac_signed_with_the_public_key_is_refused(
    gateway: RunningGateway, stub: Stub, issuer: TestIssuer, alg: str
) -> None:
    """Key confusion: an attacker signs with HMAC using the published public key as the secret."""
    jwk = issuer.jwks()["keys"][0]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    for secret in (json.dumps(jwk).encode(), base64.urlsafe_b64decode(jwk["x"] + "==")):
        header = {"alg": alg, "typ": "JWT", "kid": issuer.kid}
        signing_input = unsigned(header, claims()).rsplit(".", 1)[0]
        signature = hmac.new(secret, signing_input.encode(), digest).digest()
        await assert_invalid(gateway, stub, f"{signing_input}.{b64(signature)}")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "x" * 5000])
async def test_malformed_tokens_are_refused(gateway: RunningGateway, token: str) -> None:
    response = await gateway.client.get("/v1/identity/customer/profile", headers=bearer(token))
    assert response.status_code == 401


async def test_token_without_kind_is_refused(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    await assert_invalid(gateway, stub, issuer.mint(kind="root"))


async def test_flood_of_unknown_key_ids_does_not_flood_identity(
    gateway: RunningGateway, stub: Stub, issuer: TestIssuer
) -> None:
    forger = Ed25519PrivateKey.generate()
    before = stub.state.jwks_fetches
    tokens = [jwt.encode(claims(), forger, algorithm="EdDSA", headers={"kid": uuid.uuid4().hex}) for _ in range(40)]
    responses = await asyncio.gather(
        *(gateway.client.get("/v1/identity/customer/profile", headers=bearer(t)) for t in tokens)
    )
    assert {r.status_code for r in responses} == {401}
    # Concurrent callers share one refetch and refetches are spaced: a handful at most, not 40.
    assert stub.state.jwks_fetches - before <= 3


async def test_customer_token_cannot_reach_a_staff_route(
    gateway: RunningGateway, stub: Stub, issuer: TestIssuer
) -> None:
    hits = stub.state.hits
    response = await gateway.client.get("/v1/identity/staff/accounts", headers=issuer.headers(kind="customer"))
    assert response.status_code == 403
    assert response.json()["code"] == "route_not_allowed"
    assert stub.state.hits == hits


async def test_person_tokens_cannot_reach_internal_routes(gateway: RunningGateway, issuer: TestIssuer) -> None:
    for kind in ("customer", "staff"):
        response = await gateway.client.post("/v1/identity/internal/freeze", headers=issuer.headers(kind=kind))
        assert response.status_code == 403


async def test_service_token_reaches_internal_but_not_me_routes(gateway: RunningGateway, issuer: TestIssuer) -> None:
    service = issuer.headers(kind="service", subject="risk", extra={"sid": None})
    assert (await gateway.client.post("/v1/identity/internal/freeze", headers=service)).status_code == 200
    assert (await gateway.client.get("/v1/identity/me/profile", headers=service)).status_code == 403
    assert (await gateway.client.get("/v1/identity/any/thing", headers=service)).status_code == 200


async def test_me_routes_take_customers_and_staff(gateway: RunningGateway, issuer: TestIssuer) -> None:
    for kind in ("customer", "staff"):
        response = await gateway.client.get("/v1/identity/me/profile", headers=issuer.headers(kind=kind))
        assert response.status_code == 200


async def test_step_up_route_needs_its_assurance_level(gateway: RunningGateway, issuer: TestIssuer) -> None:
    low = await gateway.client.post("/v1/identity/staff/high/grant", headers=issuer.headers(kind="staff", acr="aal2"))
    assert low.status_code == 403
    assert low.json()["code"] == "step_up_required"
    assert low.json()["required_acr"] == "aal3"
    high = await gateway.client.post("/v1/identity/staff/high/grant", headers=issuer.headers(kind="staff", acr="aal3"))
    assert high.status_code == 200


async def test_unknown_route_is_404_and_not_forwarded(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    hits = stub.state.hits
    for path in ("/v1/identity/admin/users", "/v1/identity/", "/v1/identity/customerx/y", "/v1/vault/staff/keys"):
        response = await gateway.client.get(path, headers=issuer.headers(kind="staff"))
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    assert (await gateway.client.get("/v1/payments/x")).json()["code"] == "unknown_route"
    assert stub.state.hits == hits


async def test_method_outside_the_policy_is_405(gateway: RunningGateway, stub: Stub) -> None:
    hits = stub.state.hits
    response = await gateway.client.get("/v1/identity/public/login")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    for method in ("TRACE", "CONNECT", "PROPFIND"):  # never forwarded, whatever the route
        odd = await gateway.client.request(method, "/v1/identity/public/items/1")
        assert odd.status_code == 405, method
    assert stub.state.hits == hits


@pytest.mark.parametrize(
    "path",
    [
        "/v1/identity/public/..%2fstaff/accounts",
        "/v1/identity/public/%2e%2e/staff/accounts",
        "/v1/identity/public//staff",
        "/v1/identity/public/%5c..%5cstaff",
    ],
)
async def test_path_tricks_cannot_cross_the_policy(gateway: RunningGateway, stub: Stub, path: str) -> None:
    hits = stub.state.hits
    response = await gateway.client.send(gateway.client.build_request("GET", path))
    assert response.status_code in (400, 404), path
    assert stub.state.hits == hits


@pytest.mark.parametrize(
    "raw_path", [b"/v1/identity/public/../staff/accounts", b"/v1/identity/public/./x", b"/v1/identity/public/.."]
)
async def test_dot_segments_sent_raw_are_refused(gateway: RunningGateway, stub: Stub, raw_path: bytes) -> None:
    hits = stub.state.hits
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET " + raw_path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"400"
    assert stub.state.hits == hits


async def test_client_identity_headers_are_stripped(gateway: RunningGateway, issuer: TestIssuer) -> None:
    spoofed = {
        "X-User-Id": "admin",
        "X-Authenticated-Subject": "admin",
        "X-Subject-Kind": "staff",
        "X-Forwarded-User": "admin",
        "Remote-User": "admin",
        "X-Roles": "superuser",
        "X-Gateway-Verified": "true",
        "Forwarded": "for=1.2.3.4",
        "X-Real-IP": "1.2.3.4",
    }
    response = await gateway.client.get(
        "/v1/identity/customer/profile", headers={**issuer.headers(kind="customer"), **spoofed}
    )
    received = {k for k, _ in response.json()["headers"]}
    assert not received & {k.lower() for k in spoofed}
    assert "x-request-id" in received


async def test_forwarded_for_is_believed_only_from_trusted_proxies(gateway: RunningGateway) -> None:
    # The test client connects from 127.0.0.1, which is not a trusted proxy (10.0.0.0/8 is).
    response = await gateway.client.get("/v1/identity/public/echo", headers={"X-Forwarded-For": "6.6.6.6"})
    forwarded = [v for k, v in response.json()["headers"] if k == "x-forwarded-for"]
    assert forwarded == ["127.0.0.1"]


async def test_revoked_session_stops_working_within_the_bound(
    gateway: RunningGateway, stub: Stub, issuer: TestIssuer
) -> None:
    session = str(uuid.uuid4())
    headers = issuer.headers(kind="customer", session_id=session)
    other = issuer.headers(kind="customer")
    assert (await gateway.client.get("/v1/identity/customer/profile", headers=headers)).status_code == 200
    for _ in range(3):  # page boundaries: the follower must read every page
        stub.state.revoke(str(uuid.uuid4()))
    stub.state.revoke(session)
    bound = gateway.app.state.settings.revocation_poll_seconds
    deadline = time.monotonic() + 20 * bound  # generous: this is about the outcome, not the timing
    status = 200
    while time.monotonic() < deadline:
        response = await gateway.client.get("/v1/identity/customer/profile", headers=headers)
        status = response.status_code
        if status == 401:
            assert response.json()["code"] == "session_revoked"
            break
        await asyncio.sleep(bound / 4)
    assert status == 401
    # A fresh token of the same session is refused too; other sessions are untouched.
    again = issuer.headers(kind="customer", session_id=session)
    assert (await gateway.client.get("/v1/identity/customer/profile", headers=again)).status_code == 401
    assert (await gateway.client.get("/v1/identity/customer/profile", headers=other)).status_code == 200


async def test_the_gateway_reads_the_feed_with_its_client_credentials(stub: Stub, gateway: RunningGateway) -> None:
    assert stub.state.token_fetches >= 1
    assert stub.state.feed_reads >= 1
    assert gateway.app.state.revocation_feed.fresh


async def test_session_tokens_fail_closed_when_the_feed_goes_stale(stub: Stub, issuer: TestIssuer) -> None:
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url), revocation_poll_seconds=0.1, revocation_max_staleness_seconds=0.5
    )
    async with running_gateway(settings) as gw:
        person = issuer.headers(kind="customer")
        service = issuer.headers(kind="service", subject="risk", extra={"sid": None})
        assert (await gw.client.get("/v1/identity/customer/x", headers=person)).status_code == 200
        stub.state.feed_up = False
        try:
            deadline = time.monotonic() + 10
            status = 200
            while status == 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                response = await gw.client.get("/v1/identity/customer/x", headers=person)
                status = response.status_code
            assert status == 503
            assert response.json()["code"] == "revocation_state_unknown"
            # Tokens without a session (services) do not depend on the feed.
            assert (await gw.client.get("/v1/identity/internal/x", headers=service)).status_code == 200
        finally:
            stub.state.feed_up = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and status != 200:
            await asyncio.sleep(0.1)
            status = (await gw.client.get("/v1/identity/customer/x", headers=person)).status_code
        assert status == 200


async def test_key_rotation_new_key_accepted_retired_key_refused_even_if_cached(issuer: TestIssuer) -> None:
    state = StubState(issuer)
    async with (
        serve("identity", stub_app(state)) as identity,
        running_gateway(gateway_settings(dict.fromkeys(SERVICES, identity.url))) as gw,
    ):
        old_token = issuer.headers(kind="customer")
        assert (await gw.client.get("/v1/identity/customer/x", headers=old_token)).status_code == 200
        # identity rotates: a new key is published next to the old one.
        new_issuer = TestIssuer()
        state.extra_keys.append(new_issuer)
        await asyncio.sleep(gw.app.state.settings.jwks_refetch_interval_seconds)
        new_token = new_issuer.headers(kind="customer")
        assert (await gw.client.get("/v1/identity/customer/x", headers=new_token)).status_code == 200
        # The old key is retired; after the gateway's next refresh its tokens stop working,
        # including the one whose verification the gateway remembered.
        state.publish_issuer_key = False
        await gw.app.state.token_verifier.refresh()
        refused = await gw.client.get("/v1/identity/customer/x", headers=old_token)
        assert refused.status_code == 401
        assert (await gw.client.get("/v1/identity/customer/x", headers=new_token)).status_code == 200
