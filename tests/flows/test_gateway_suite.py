"""The gateway in front of the real services over real HTTP: identity's real keys, client credentials and feed.

Nothing of ours is stood in for: identity issues the tokens (client credentials
for a service, customer sessions, its JWKS for the gateway), the gateway follows
identity's revocation feed with its own client credentials (client id
``gateway``). Only the SMS provider is the development sink identity reads back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.identity.support import PASSWORD, customer_data
from tests.support.codes import sent_code
from tests.support.database import TestDatabases
from tests.support.live import LiveSuite, live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
async def suite(test_databases: TestDatabases) -> AsyncIterator[LiveSuite]:
    url = await test_databases.clone("suite_gateway_flow")
    # vault also follows the feed itself (defence in depth, tested below); the others rely on the gateway.
    overrides = {"vault": {"follow_revocations": True, "revocation_poll_seconds": 0.5}}
    async with live_suite(suite_factories(url, overrides=overrides)) as running:
        yield running


@pytest.fixture
async def client(suite: LiveSuite) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as c:
        yield c


async def service_token(client: httpx.AsyncClient, client_id: str = "risk") -> str:
    response = await client.post(
        "/v1/identity/public/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "dev-insecure-service-client-secret",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_the_gateway_follows_identitys_revocation_feed(client: httpx.AsyncClient) -> None:
    """The gateway got its own client-credentials token from identity and read the feed with it."""
    deadline = time.monotonic() + 20
    fresh = 0.0
    while time.monotonic() < deadline:
        metrics = (await client.get("/metrics")).text
        line = next(line for line in metrics.splitlines() if line.startswith("gateway_revocation_feed_age_seconds "))
        fresh = float(line.split()[1])
        if fresh < 30:
            break
        await asyncio.sleep(0.2)
    assert fresh < 30


async def test_real_service_token_passes_and_forged_tokens_do_not(client: httpx.AsyncClient) -> None:
    token = await service_token(client)
    revocations = await client.get("/v1/identity/internal/revocations", headers={"Authorization": f"Bearer {token}"})
    assert revocations.status_code == 200, revocations.text
    assert "revocations" in revocations.json()
    # The same claims signed by someone else's key, with identity's key id: refused at the gateway.
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]})
    refused = await client.get("/v1/identity/internal/revocations", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


async def test_a_service_token_cannot_reach_staff_routes(client: httpx.AsyncClient) -> None:
    token = await service_token(client)
    response = await client.get("/v1/permissions/staff/approvals", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["code"] == "route_not_allowed"


async def test_unknown_routes_of_real_services_are_not_forwarded(client: httpx.AsyncClient) -> None:
    for path in ("/v1/identity/admin", "/v1/vault/debug/keys", "/v1/risk/internal%2f../x"):
        response = await client.get(path)
        assert response.status_code in (400, 404), path


async def test_aggregated_openapi_of_the_real_services(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert document["info"]["x-services-missing"] == []
    assert any(p.startswith("/v1/identity/public/") for p in paths)
    assert not any("/internal/" in p for p in paths)
    for item in paths.values():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert "x-gateway-policy" in operation
    assert (await client.get("/docs")).status_code == 200


async def test_one_trace_through_gateway_and_identity(
    client: httpx.AsyncClient, clear_spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("tests").start_as_current_span("mobile app") as parent:
        response = await client.get("/v1/identity/.well-known/jwks.json")
    assert response.status_code == 200
    trace_id = parent.get_span_context().trace_id
    assert response.headers["traceparent"].split("-")[1] == format(trace_id, "032x")
    spans = [s for s in clear_spans.get_finished_spans() if s.context and s.context.trace_id == trace_id]
    servers = {s.name for s in spans if s.kind is SpanKind.SERVER}
    assert "GET /v1/{service}/{path:path}" in servers
    assert any(name.endswith("jwks.json") for name in servers), servers


async def _customer_session(client: httpx.AsyncClient) -> str:
    """A real customer of identity, signed in: registered, phone verified, logged in."""
    data = customer_data()
    registered = await client.post("/v1/identity/public/register", json=data)
    assert registered.status_code == 201, registered.text
    account_id = str(registered.json()["account_id"])
    code = await sent_code(client, account_id, "code.verify:sms")
    verified = await client.post(
        "/v1/identity/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": code}
    )
    assert verified.status_code == 200, verified.text
    login = await client.post(
        "/v1/identity/public/login",
        json={"identifier": data["phone"], "password": PASSWORD, "device_id": "gateway-flow"},
    )
    assert login.status_code == 200, login.text
    answer = login.json()
    if answer["status"] != "authenticated":
        channel = "sms" if "sms" in answer["methods"] else "email"
        sent = await client.post(
            "/v1/identity/public/login/challenge/send", json={"challenge": answer["challenge"], "channel": channel}
        )
        assert sent.status_code == 200, sent.text
        body = {
            "challenge": answer["challenge"],
            "method": channel,
            "code": await sent_code(client, account_id, "code.login"),
        }
        done = await client.post("/v1/identity/public/login/challenge/verify", json=body)
        assert done.status_code == 200, done.text
        answer = done.json()
    return str(answer["access_token"])


async def test_a_real_revoked_session_stops_at_the_gateway_within_the_bound(suite: LiveSuite) -> None:
    """identity revokes the session; the gateway refuses it, and so does vault called directly."""
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as client:
        token = await _customer_session(client)
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/v1/vault/me/catalogue", headers=headers)).status_code == 200
        revoked = await client.post("/v1/identity/me/sessions/revoke-all", headers=headers)
        assert revoked.status_code == 200, revoked.text
        deadline = time.monotonic() + 20  # the bound is 2 s; generous here, this is about the outcome
        response = await client.get("/v1/vault/me/catalogue", headers=headers)
        while response.status_code == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            response = await client.get("/v1/vault/me/catalogue", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "session_revoked"
    # Past the gateway (a caller inside the cluster): vault follows the feed itself.
    async with httpx.AsyncClient(base_url=suite.url("vault"), timeout=20) as direct:
        answer = await direct.get("/me/catalogue", headers=headers)
        while answer.status_code == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            answer = await direct.get("/me/catalogue", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["code"] == "session_revoked"
