"""Gateway test fixtures: a stub upstream (identity's keys and feed + an echo) and gateways in front of it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create
from gateway.config import SERVICES, GatewaySettings
from tests.gateway.stub import StubState, serve, stub_app
from tests.support.live import LiveServer
from tests.support.tokens import TestIssuer

TEST_ROUTES = Path(__file__).parent / "routes"


@dataclass
class Stub:
    state: StubState
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url


@dataclass
class RunningGateway:
    app: FastAPI
    server: LiveServer
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.server.url


def gateway_settings(upstream_urls: dict[str, str], **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {f"{name}_url": upstream_urls.get(name, "http://127.0.0.1:9") for name in SERVICES}
    values.update(
        environment="test",
        log_json=False,
        routes_dir=TEST_ROUTES,
        revocation_poll_seconds=0.2,
        upstream_try_timeout_seconds=2.0,
        upstream_timeout_seconds=4.0,
    )
    values.update(overrides)
    return GatewaySettings(**values)


@contextlib.asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[RunningGateway]:
    app = create(settings)
    async with serve("gateway", app) as server:
        feed = app.state.revocation_feed
        for _ in range(500):  # the first feed read makes session tokens acceptable
            if feed.fresh:
                break
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            yield RunningGateway(app, server, client)


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
async def stub(issuer: TestIssuer) -> AsyncIterator[Stub]:
    state = StubState(issuer)
    async with serve("stub", stub_app(state)) as server:
        yield Stub(state, server)


@pytest.fixture(scope="module")
async def gateway(stub: Stub) -> AsyncIterator[RunningGateway]:
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url),
        rate_limit_ip="1000/second",
        rate_limit_subject="1000/second",
        rate_limit_classes={"login": "3/minute", "otp": "2/minute"},
        cors_allow_origins=["https://web.bank.example"],
        trusted_proxies=["10.0.0.0/8"],
        max_body_bytes=10_000,
    )
    async with running_gateway(settings) as running:
        yield running
