"""Attacks on the gateway's edge (issue 13 items 3, 4 and 15), replayed from the attacker's side."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import SERVICES, GatewaySettings
from gateway.resilience import CircuitBreaker, RetryBudget, State
from gateway.transport import InvalidTarget
from gateway.upstream import Upstream
from tests.gateway.conftest import RunningGateway, Stub, gateway_settings, running_gateway

#: The service segment spelled with percent-encoding: each decodes to a real route.
ENCODED_PREFIXES = [
    "/v1/identit%79/healthz",
    "/v1/identit%79/public/items/1",
    "/v1/%69dentity/public/items/1",
    "/v1/IDENTIT%59/public/items/1",
    "/%761/identity/public/items/1",
    "/v%31/identity/public/items/1",
]


@pytest.mark.parametrize("path", ENCODED_PREFIXES)
async def test_percent_encoding_in_the_service_segment_is_refused_and_never_forwarded(
    gateway: RunningGateway, stub: Stub, path: str
) -> None:
    hits = stub.state.hits
    response = await gateway.client.get(path)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_path"
    assert stub.state.hits == hits


async def test_encoded_requests_cannot_open_a_services_circuit(stub: Stub) -> None:
    # Production upstream URLs carry no port: the old target "identity" + "79/healthz" named
    # the host identity79, whose failed look-ups counted against identity's circuit.
    urls = dict.fromkeys(SERVICES, stub.url) | {"vault": "http://vault.invalid"}
    settings = gateway_settings(urls, breaker_failure_threshold=2, breaker_open_seconds=60, upstream_retries=0)
    async with running_gateway(settings) as gw:
        for _ in range(10):
            assert (await gw.client.get("/v1/vaul%74/public/x")).status_code == 400
            assert (await gw.client.get("/v1/identit%79/public/x")).status_code == 400
        assert gw.app.state.upstreams["vault"].breaker.state is State.closed
        assert gw.app.state.upstreams["identity"].breaker.state is State.closed
        # Logins (any identity route) keep working.
        assert (await gw.client.post("/v1/identity/public/login", json={})).status_code == 200


async def test_encoding_after_the_service_segment_still_reaches_the_service_verbatim(gateway: RunningGateway) -> None:
    response = await gateway.client.get("/v1/identity/public/items/a%20b")
    assert response.status_code == 200
    assert response.json() == {"id": "a b"}


async def test_a_target_that_is_not_a_path_never_counts_against_the_upstream() -> None:
    class NeverCalled:
        async def send(self, *args: object) -> None:
            raise AssertionError("must not reach the network")

        async def aclose(self) -> None:
            return None

    breaker = CircuitBreaker("identity", threshold=1, open_seconds=60)
    upstream = Upstream(
        name="identity",
        base_url="http://identity",
        client=NeverCalled(),  # type: ignore[arg-type]
        breaker=breaker,
        budget=RetryBudget(0.2, 3.0),
        timeout=1.0,
        try_timeout=1.0,
        retries=2,
    )
    for _ in range(3):
        with pytest.raises(InvalidTarget):
            await upstream.call("GET", "79/healthz", [], b"")
    assert breaker.state is State.closed


@pytest.mark.parametrize("environment", ["test", "staging", "production"])
def test_behind_a_proxy_without_trusted_proxies_refuses_to_start(environment: str) -> None:
    secret = "a-real-secret-" + "x" * 20
    with pytest.raises(ValidationError, match="GATEWAY_TRUSTED_PROXIES is empty"):
        GatewaySettings(environment=environment, behind_proxy=True, client_secret=secret)
    configured = GatewaySettings(
        environment=environment, behind_proxy=True, trusted_proxies=["10.0.0.0/8"], client_secret=secret
    )
    assert configured.trusted_proxies == ["10.0.0.0/8"]


def test_development_may_run_behind_a_proxy_without_trusted_proxies() -> None:
    assert GatewaySettings(environment="development", behind_proxy=True).behind_proxy


async def test_ipv6_clients_are_limited_by_their_slash_64(stub: Stub) -> None:
    # The proxy at 127.0.0.1 is trusted; the attacker owns 2001:db8:1:2::/64 and rotates addresses.
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url),
        trusted_proxies=["127.0.0.1/32"],
        behind_proxy=True,
        rate_limit_classes={"login": "3/minute"},
    )
    async with running_gateway(settings) as gw:
        codes = [
            (
                await gw.client.post(
                    "/v1/identity/public/login", json={}, headers={"x-forwarded-for": f"2001:db8:1:2::{n:x}"}
                )
            ).status_code
            for n in range(1, 6)
        ]
        assert codes == [200, 200, 200, 429, 429]
        # A neighbour in another /64 keeps its own budget; so does an IPv4 client.
        other = await gw.client.post(
            "/v1/identity/public/login", json={}, headers={"x-forwarded-for": "2001:db8:1:3::1"}
        )
        assert other.status_code == 200
        ipv4 = await gw.client.post("/v1/identity/public/login", json={}, headers={"x-forwarded-for": "192.0.2.7"})
        assert ipv4.status_code == 200
