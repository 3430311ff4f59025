"""Two gateway processes sharing the system Redis count one client's requests together.

The gateways are real processes (uvicorn); the upstream behind them is the
stub of tests/gateway/stub.py, which stands in for identity's JWKS and
revocation feed with tests.support.tokens.TestIssuer (identity's token
endpoints are built separately). Skipped when Redis is not reachable at
127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import SERVICES
from tests.gateway.stub import StubState, serve, stub_app
from tests.support.live import LiveServer
from tests.support.tokens import TestIssuer

pytestmark = pytest.mark.flow

ROOT = Path(__file__).resolve().parents[2]
REDIS = ("127.0.0.1", 6379)


def redis_reachable() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def issuer() -> TestIssuer:
    return TestIssuer()


@pytest.fixture(scope="module")
async def upstream(issuer: TestIssuer) -> AsyncIterator[LiveServer]:
    async with serve("stub", stub_app(StubState(issuer))) as server:
        yield server


@pytest.fixture(scope="module")
def gateways(upstream: LiveServer) -> Iterator[list[str]]:
    if not redis_reachable():
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    prefix = f"gwtest-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env.update({f"GATEWAY_{name.upper()}_URL": upstream.url for name in SERVICES})
    env.update(
        GATEWAY_ENVIRONMENT="test",
        GATEWAY_LOG_JSON="false",
        GATEWAY_ACCESS_LOG="false",
        GATEWAY_ROUTES_DIR=str(ROOT / "tests" / "gateway" / "routes"),
        GATEWAY_RATE_LIMIT_STORAGE="async+redis://127.0.0.1:6379/0",
        GATEWAY_RATE_LIMIT_KEY_PREFIX=prefix,
        GATEWAY_RATE_LIMIT_CLASSES=json.dumps({"login": "4/minute"}),
        GATEWAY_REVOCATION_POLL_SECONDS="0.5",
    )
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "gateway.app:create",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-proxy-headers",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


#: A gateway process imports FastAPI, SQLAlchemy, OpenTelemetry ...: on a loaded 2-core machine
#: two of them starting at once took more than 15 s. This bounds a start-up, it times nothing.
START_UP_SECONDS = 90.0


async def wait_ready(client: httpx.AsyncClient, url: str) -> None:
    deadline = time.monotonic() + START_UP_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if (await client.get(f"{url}/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gateway at {url} did not start")


async def test_two_gateways_count_together_in_redis(gateways: list[str]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for url in gateways:
            await wait_ready(client, url)
        statuses = []
        for i in range(6):  # alternate between the two processes
            response = await client.post(f"{gateways[i % 2]}/v1/identity/public/login", json={})
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 200, 429, 429]
        assert response.headers["ratelimit-policy"] == '"login";q=4;w=60'
        assert int(response.headers["retry-after"]) >= 1
