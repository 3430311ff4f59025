"""Per-upstream timeouts, retries for idempotent methods only, and the circuit breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from gateway.config import SERVICES
from gateway.resilience import CircuitBreaker, CircuitOpen, RetryBudget, State
from gateway.transport import ConnectFailed, TimedOut, UpstreamResponse
from gateway.upstream import Upstream, UpstreamDown, UpstreamTimeout
from tests.gateway.conftest import Stub, gateway_settings, running_gateway
from tests.gateway.stub import StubState, serve, stub_app
from tests.support.tokens import TestIssuer


class ScriptedClient:
    """An upstream client that fails as told (unit tests of the retry loop)."""

    def __init__(self, outcomes: list[Exception | int]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    async def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, time_limit: float
    ) -> UpstreamResponse:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome

        async def close() -> None:
            return None

        return UpstreamResponse(outcome, [], b"", None, close)

    async def aclose(self) -> None:
        return None


def state_of(breaker: CircuitBreaker) -> State:
    return breaker.state


def upstream(client: Any, *, retries: int = 2, threshold: int = 5, budget: RetryBudget | None = None) -> Upstream:
    return Upstream(
        name="risk",
        base_url="http://risk",
        client=client,
        breaker=CircuitBreaker("risk", threshold=threshold, open_seconds=60),
        budget=budget or RetryBudget(0.2, 3.0),
        timeout=5.0,
        try_timeout=1.0,
        retries=retries,
    )


async def test_idempotent_request_is_retried_after_a_connect_failure() -> None:
    client = ScriptedClient([ConnectFailed(), 200])
    response = await upstream(client).call("GET", "/x", [], b"")
    assert response.status == 200
    assert client.calls == 2


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_request_is_never_retried(method: str) -> None:
    client = ScriptedClient([ConnectFailed(), 200])
    with pytest.raises(UpstreamDown):
        await upstream(client).call(method, "/x", [], b"{}")
    assert client.calls == 1


async def test_retries_stop_at_the_attempt_limit() -> None:
    client = ScriptedClient([TimedOut()])
    with pytest.raises(UpstreamTimeout):
        await upstream(client, retries=2).call("GET", "/x", [], b"")
    assert client.calls == 3


async def test_retry_budget_caps_retries_under_a_broad_outage() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    budget._tokens = 1.0  # one retry left in the bucket
    client = ScriptedClient([ConnectFailed()])
    target = upstream(client, retries=3, threshold=100, budget=budget)
    for _ in range(3):
        with pytest.raises(UpstreamDown):
            await target.call("GET", "/x", [], b"")
    assert client.calls == 3 + 1  # three first attempts, one retry paid by the budget


def test_breaker_opens_after_consecutive_failures_and_probes_when_half_open() -> None:
    breaker = CircuitBreaker("vault", threshold=3, open_seconds=0.05, probes=1)
    for _ in range(3):
        probe = breaker.before()
        breaker.after(probe, ok=False)
    assert state_of(breaker) is State.open
    with pytest.raises(CircuitOpen):
        breaker.before()
    time.sleep(0.06)
    probe = breaker.before()
    assert probe
    assert state_of(breaker) is State.half_open
    with pytest.raises(CircuitOpen):
        breaker.before()  # one probe at a time
    breaker.after(probe, ok=False)
    assert state_of(breaker) is State.open
    time.sleep(0.06)
    probe = breaker.before()
    breaker.after(probe, ok=True)
    assert state_of(breaker) is State.closed
    assert breaker.before() is False


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("vault", threshold=3, open_seconds=1)
    for ok in (False, False, True, False, False):
        breaker.after(breaker.before(), ok=ok)
    assert state_of(breaker) is State.closed


async def test_slow_upstream_gets_a_504_problem(stub: Stub) -> None:
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url),
        upstream_try_timeout_seconds=0.2,
        upstream_timeout_seconds=0.5,
        upstream_retries=1,
    )
    async with running_gateway(settings) as gw:
        response = await gw.client.get("/v1/identity/public/slow?seconds=2")
        assert response.status_code == 504
        assert response.json()["code"] == "upstream_timeout"


async def test_circuit_opens_on_a_dead_upstream_and_closes_when_it_returns(stub: Stub) -> None:
    vault_state = StubState(stub.state.issuer)
    async with serve("vault", stub_app(vault_state)) as vault:
        port = int(vault.url.rsplit(":", 1)[1])
        urls = dict.fromkeys(SERVICES, stub.url) | {"vault": vault.url}
        settings = gateway_settings(urls, breaker_failure_threshold=3, breaker_open_seconds=0.5, upstream_retries=0)
        async with running_gateway(settings) as gw:
            assert (await gw.client.get("/v1/vault/public/x")).status_code == 200
            await vault.stop()
            vault.sock.close()
            codes = [(await gw.client.get("/v1/vault/public/x")).json()["code"] for _ in range(3)]
            assert codes == ["upstream_unavailable"] * 3
            fast = await gw.client.get("/v1/vault/public/x")
            assert fast.status_code == 503
            assert fast.json()["code"] == "circuit_open"
            assert int(fast.headers["retry-after"]) >= 1
            # Other upstreams are not affected by vault's circuit.
            assert (await gw.client.get("/v1/identity/public/x")).status_code == 200

            async with serve("vault", stub_app(vault_state), port=port):
                deadline = time.monotonic() + 10
                status = 503
                while status != 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    status = (await gw.client.get("/v1/vault/public/x")).status_code
                assert status == 200
                assert state_of(gw.app.state.upstreams["vault"].breaker) is State.closed


async def test_the_upstream_client_relays_every_kind_of_answer(stub: Stub, issuer: TestIssuer) -> None:
    urls = dict.fromkeys(SERVICES, stub.url) | {"vault": "http://127.0.0.1:9"}
    async with running_gateway(gateway_settings(urls, upstream_retries=0)) as gw:
        token = issuer.headers(kind="customer")
        assert (await gw.client.get("/v1/identity/customer/x", headers=token)).status_code == 200
        posted = await gw.client.post("/v1/identity/public/echo", content=b"y" * 321)
        assert posted.json()["body_bytes"] == 321
        assert len((await gw.client.get("/v1/identity/public/big")).content) == 600_000
        chunked = await gw.client.get("/v1/identity/public/chunked")
        assert chunked.text == "".join(f"part-{i};" for i in range(50))
        head = await gw.client.head("/v1/identity/public/items/1")
        assert head.status_code == 200
        assert head.content == b""
        for _ in range(3):  # kept-alive connections are reused
            assert (await gw.client.get("/v1/identity/public/items/2")).json() == {"id": "2"}
        down = await gw.client.get("/v1/vault/public/x")
        assert down.status_code == 503
        assert down.json()["code"] == "upstream_unavailable"
