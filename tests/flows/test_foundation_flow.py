"""Through the gateway over real HTTP: routing, readiness, problems and one trace per request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.config import SERVICES
from tests.support.database import TestDatabases
from tests.support.live import LiveSuite, live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
async def suite(test_databases: TestDatabases) -> AsyncIterator[LiveSuite]:
    url = await test_databases.clone("suite_flow")
    async with live_suite(suite_factories(url)) as running:
        yield running


@pytest.fixture
async def client(suite: LiveSuite) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=10) as c:
        yield c


async def test_gateway_status_aggregates_every_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/status")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "services": dict.fromkeys(SERVICES, "ready")}


async def test_gateway_readiness_is_about_the_gateway_alone(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_health_through_the_gateway(client: httpx.AsyncClient, service: str) -> None:
    live = await client.get(f"/v1/{service}/healthz")
    ready = await client.get(f"/v1/{service}/readyz")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


async def test_request_id_is_echoed_and_reaches_the_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/identity/healthz", headers={"x-request-id": "client-chosen-id-42"})
    assert response.headers["x-request-id"] == "client-chosen-id-42"
    generated = await client.get("/v1/identity/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_unknown_service_is_a_problem_not_forwarded(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/payments/anything")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unknown_route"


async def test_unknown_path_on_a_service_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/vault/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_wrong_method_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/risk/healthz", json={})
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_unknown_top_level_route_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_one_trace_spans_gateway_service_and_database(
    client: httpx.AsyncClient, clear_spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("tests").start_as_current_span("mobile app") as parent:
        response = await client.get("/v1/identity/readyz")
    assert response.status_code == 200
    trace_id = parent.get_span_context().trace_id
    spans = [s for s in clear_spans.get_finished_spans() if s.context and s.context.trace_id == trace_id]
    server_spans = {s.name for s in spans if s.kind is SpanKind.SERVER}
    attributes = [(s, dict(s.attributes or {})) for s in spans]
    client_urls = [str(a.get("url.full") or a.get("http.url")) for s, a in attributes if s.kind is SpanKind.CLIENT]
    db_spans = [s for s, a in attributes if a.get("db.system.name") == "postgresql"]
    # The gateway's server span, its call to identity, identity's server span, and SQL.
    assert server_spans == {"GET /v1/{service}/{path:path}", "GET /readyz"}
    assert any(url.endswith("/v1/identity/readyz") for url in client_urls)
    assert any(url.endswith("/readyz") and "/v1/" not in url for url in client_urls)
    assert db_spans, [s.name for s in spans]
