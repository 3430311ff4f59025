"""The service client retries only what cannot be applied twice, and carries context."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace

from kit.context import reset_request_id, set_request_id
from kit.http import ServiceClient, UpstreamUnavailable


def flaky(failures: int, status: int = 503) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= failures:
            return httpx.Response(status)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler), seen


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_idempotent_calls_are_retried(method: str) -> None:
    transport, seen = flaky(2)
    client = ServiceClient("http://gw", transport=transport, retries=2, backoff_seconds=0.001)
    response = await client.request(method, "/v1/x")
    assert response.status_code == 200
    assert len(seen) == 3


async def test_a_post_is_not_retried_after_it_reached_the_server() -> None:
    transport, seen = flaky(1)
    client = ServiceClient("http://gw", transport=transport, retries=3, backoff_seconds=0.001)
    response = await client.request("POST", "/v1/x", json={})
    assert response.status_code == 503
    assert len(seen) == 1


async def test_a_post_with_an_idempotency_key_is_retried_with_the_same_key() -> None:
    transport, seen = flaky(2)
    client = ServiceClient("http://gw", transport=transport, retries=3, backoff_seconds=0.001)
    response = await client.request("POST", "/v1/x", json={}, idempotency_key="abc-123-456")
    assert response.status_code == 200
    assert {r.headers["idempotency-key"] for r in seen} == {"abc-123-456"}


async def test_a_post_that_never_connected_is_retried() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201)

    client = ServiceClient("http://gw", transport=httpx.MockTransport(handler), retries=1, backoff_seconds=0.001)
    assert (await client.request("POST", "/v1/x")).status_code == 201


async def test_a_post_that_timed_out_is_not_retried() -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ReadTimeout("slow", request=request)

    client = ServiceClient("http://gw", transport=httpx.MockTransport(handler), retries=3, backoff_seconds=0.001)
    with pytest.raises(UpstreamUnavailable):
        await client.request("POST", "/v1/x")
    assert attempts == 1


async def test_trace_context_request_id_and_service_token_are_sent() -> None:
    transport, seen = flaky(0)

    async def token() -> str:
        return "service-token"

    client = ServiceClient("http://gw", transport=transport, token_provider=token)
    marker = set_request_id("req-0123456789")
    try:
        with trace.get_tracer("t").start_as_current_span("caller") as span:
            await client.request("GET", "/v1/x")
            await client.request("GET", "/v1/.well-known/jwks.json", anonymous=True)
    finally:
        reset_request_id(marker)
    first, public = seen
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert trace_id in first.headers["traceparent"]
    assert first.headers["x-request-id"] == "req-0123456789"
    assert first.headers["authorization"] == "Bearer service-token"
    assert "authorization" not in public.headers
