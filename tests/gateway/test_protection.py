"""Rate limits, size limits, CORS, security headers, tracing, metrics and the access log, over real HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.config import SERVICES
from gateway.observability import ACCESS_LOG
from tests.gateway.conftest import RunningGateway, Stub, gateway_settings, running_gateway
from tests.support.tokens import TestIssuer


async def test_login_route_class_is_limited_per_address_with_headers(gateway: RunningGateway, stub: Stub) -> None:
    # The module's gateway allows 3 logins a minute per address (test setting).
    statuses = []
    last = None
    for _ in range(3):
        last = await gateway.client.post("/v1/identity/public/login", json={})
        statuses.append(last.status_code)
    assert statuses == [200, 200, 200]
    assert last is not None
    assert last.headers["ratelimit-remaining"] == "0"
    hits = stub.state.hits
    refused = await gateway.client.post("/v1/identity/public/login", json={})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-policy"] == '"login";q=3;w=60'
    assert stub.state.hits == hits, "a limited request is not forwarded"
    # Other route classes are not affected by the login limit.
    assert (await gateway.client.get("/v1/identity/public/items/1")).status_code == 200


async def test_ip_and_subject_limits(stub: Stub, issuer: TestIssuer) -> None:
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url), rate_limit_ip="5/minute", rate_limit_subject="2/minute"
    )
    async with running_gateway(settings) as gw:
        subject = str(uuid.uuid4())
        token = issuer.headers(kind="customer", subject=subject)
        codes = [(await gw.client.get("/v1/identity/customer/a", headers=token)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        other = issuer.headers(kind="customer")
        assert (await gw.client.get("/v1/identity/customer/a", headers=other)).status_code == 200
        # The fifth request from this address; after it the address limit refuses everyone.
        assert (await gw.client.get("/v1/identity/public/items/1")).status_code == 200
        refused = await gw.client.get("/v1/identity/public/items/1")
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"].startswith('"ip"')


async def test_body_size_limit(gateway: RunningGateway, stub: Stub, issuer: TestIssuer) -> None:
    hits = stub.state.hits
    declared = await gateway.client.post("/v1/identity/public/upload", content=b"x" * 10_001)
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"

    async def chunks() -> object:
        for _ in range(11):
            yield b"x" * 1000

    streamed = await gateway.client.post("/v1/identity/public/upload", content=chunks())  # type: ignore[arg-type]
    assert streamed.status_code == 413
    assert stub.state.hits == hits
    fits = await gateway.client.post("/v1/identity/public/upload", content=b"x" * 10_000)
    assert fits.status_code == 200
    assert fits.json()["body_bytes"] == 10_000


async def test_header_size_limit(gateway: RunningGateway) -> None:
    response = await gateway.client.get("/v1/identity/public/items/1", headers={"X-Big": "y" * 20_000})
    assert response.status_code == 431
    assert response.json()["code"] == "headers_too_large"


async def test_security_headers_on_proxied_and_gateway_responses(gateway: RunningGateway) -> None:
    for path in ("/v1/identity/public/items/1", "/healthz", "/v1/identity/nothing-here"):
        response = await gateway.client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_cors_allows_only_the_configured_origins(gateway: RunningGateway) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = await gateway.client.options(
        "/v1/identity/customer/x", headers={"Origin": "https://web.bank.example", **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://web.bank.example"
    denied = await gateway.client.options(
        "/v1/identity/customer/x", headers={"Origin": "https://evil.example", **preflight}
    )
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = await gateway.client.get("/v1/identity/public/items/1", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_trace_continues_to_the_upstream_and_back(
    gateway: RunningGateway, clear_spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("tests").start_as_current_span("mobile app") as parent:
        response = await gateway.client.get("/v1/identity/public/items/7", headers={"x-request-id": "trace-test-0001"})
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert response.headers["x-request-id"] == "trace-test-0001"
    assert response.headers["traceparent"].split("-")[1] == trace_id
    echoed = await gateway.client.get("/v1/identity/public/echo")
    upstream_traceparent = dict(echoed.json()["headers"])["traceparent"]
    assert upstream_traceparent.split("-")[1] == echoed.headers["traceparent"].split("-")[1]
    spans = [
        s for s in clear_spans.get_finished_spans() if s.context and format(s.context.trace_id, "032x") == trace_id
    ]
    kinds = {(s.kind, s.name) for s in spans}
    assert (SpanKind.SERVER, "GET /v1/{service}/{path:path}") in kinds
    assert any(
        kind is SpanKind.CLIENT and str(dict(s.attributes or {}).get("url.full", "")).endswith("/public/items/7")
        for s in spans
        for kind in [s.kind]
    )


async def test_metrics_separate_gateway_and_upstream_time(gateway: RunningGateway) -> None:
    await gateway.client.get("/v1/identity/public/items/1")
    text = (await gateway.client.get("/metrics")).text
    assert 'gateway_overhead_seconds_count{upstream="identity"}' in text
    assert 'gateway_upstream_duration_seconds_count{upstream="identity"}' in text
    assert 'gateway_requests_total{method="GET",route="/v1/identity/public/",status="200",upstream="identity"}' in text


async def test_access_log_has_no_token_or_query(gateway: RunningGateway, issuer: TestIssuer) -> None:
    token = issuer.mint(kind="customer")
    entries: list[dict[str, Any]] = []
    ACCESS_LOG.listeners.append(entries.append)
    try:
        await gateway.client.get(
            "/v1/identity/customer/profile?otp=123456&email=a@b.example",
            headers={"Authorization": f"Bearer {token}", "x-request-id": "access-log-test-1"},
        )
        await gateway.client.get("/v1/identity/public/lookup/alice@example.com")
    finally:
        ACCESS_LOG.listeners.remove(entries.append)
    first, second = entries[-2:]
    assert first["path"] == "/v1/identity/customer/profile"
    assert first["status"] == 200
    assert first["route"] == "/v1/identity/customer/"
    assert first["client_net"] == "127.0.0.0/24"
    assert first["request_id"] == "access-log-test-1"
    assert len(first["trace_id"]) == 32
    upstream_part, whole = first["upstream_ms"], first["duration_ms"]
    assert upstream_part <= whole  # the upstream's share is part of the whole, not a speed check
    assert "alice@example.com" not in second["path"]
    dumped = json.dumps(entries)
    assert token not in dumped
    assert "123456" not in dumped
    assert "a@b.example" not in dumped


async def test_aggregated_openapi_and_docs_page(gateway: RunningGateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert "/v1/identity/public/items/{item_id}" in paths
    operation = paths["/v1/identity/public/items/{item_id}"]["get"]
    assert operation["x-gateway-policy"]["audience"] == "public"
    assert not any(p.startswith("/v1/identity/internal/") for p in paths), "internal routes stay out"
    page = await gateway.client.get("/docs")
    assert page.status_code == 200
    assert "/v1/identity/public/items/{item_id}" in page.text
    assert "script" not in page.text.lower()


async def test_redis_down_falls_back_to_per_process_limits(stub: Stub) -> None:
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url),
        rate_limit_storage="async+redis://127.0.0.1:1/0",  # nothing listens there
        rate_limit_classes={"login": "2/minute"},
    )
    async with running_gateway(settings) as gw:
        codes = [(await gw.client.post("/v1/identity/public/login", json={})).status_code for _ in range(3)]
        assert codes == [200, 200, 429]  # still limited: never fails open
        metrics = (await gw.client.get("/metrics")).text
        assert "gateway_rate_limit_shared_storage_up 0.0" in metrics


async def test_large_responses_stream_and_bodies_are_forwarded(gateway: RunningGateway) -> None:
    big = await gateway.client.get("/v1/identity/public/big")
    assert big.status_code == 200
    assert len(big.content) == 600_000
    head = await gateway.client.head("/v1/identity/public/items/1")
    assert head.status_code == 200
    assert head.content == b""
    posted = await gateway.client.post(
        "/v1/identity/public/echo?a=1", content=b"x" * 1234, headers={"Expect": "100-continue"}
    )
    assert posted.status_code == 200
    assert posted.json()["body_bytes"] == 1234
    assert posted.json()["method"] == "POST"
    assert "expect" not in dict(posted.json()["headers"])


async def test_a_proxied_answer_carries_one_date_and_one_server_header(gateway: RunningGateway) -> None:
    for path in ("/v1/identity/public/items/1", "/v1/identity/public/big", "/v1/identity/public/chunked"):
        response = await gateway.client.get(path)
        assert response.status_code == 200
        assert len(response.headers.get_list("date")) == 1, path
        assert len(response.headers.get_list("server")) == 1, path


async def test_access_log_keeps_the_suites_request_ids_whole_and_redacts_a_clients_pii(
    gateway: RunningGateway,
) -> None:
    entries: list[dict[str, Any]] = []
    ACCESS_LOG.listeners.append(entries.append)
    try:
        generated = await gateway.client.get("/v1/identity/public/items/1")
        await gateway.client.get("/v1/identity/public/items/1", headers={"x-request-id": "app-13812345678"})
    finally:
        ACCESS_LOG.listeners.remove(entries.append)
    ours, chosen = entries[-2:]
    assert ours["request_id"] == generated.headers["x-request-id"]
    assert "13812345678" not in chosen["request_id"]
