"""Risk scoring: scored transactions/s per core of the risk process, latency at half that rate,
direct and through the gateway, and latency with a small and a large customer history.

Measured in one run:

1. **capacity**: ``POST /internal/transactions/score`` on the real risk app (uvicorn in a child
   process pinned to one CPU, PostgreSQL and the load generator on the others when there are
   any), driven closed-loop by CONCURRENCY aiohttp clients; scores/s and scores per CPU-second of
   the risk process (its per-core figure). Baseline in the same run: ``GET /healthz`` of the same
   server (the floor of any request);
2. **latency at half capacity**: open loop at half the measured rate, direct and through the
   gateway (a gateway process whose identity upstream is the gateway benchmark's stub, serving
   the JWKS), p50 and p99;
3. **history size**: the same paced run after the history grows from SMALL to LARGE customers
   (each with HISTORY_PER_CUSTOMER stored transactions in the past 30 days).

Every request is a new transaction of a random customer with history, so each one takes the
customer's row lock, reads its baselines in one statement and stores its decision.
Goals of issue 15: >= 2,000 scores/s per core, p99 < 20 ms at half capacity, flat latency from
10 thousand to 1 million customers. The machine is shared (2 cores), so only same-run ratios and
orders of magnitude mean anything. ``BENCH_DATABASE_URL`` (an admin URL) uses that server instead of
the embedded one; ``RISK_BENCH_LARGE`` sets the large history (default 100,000 customers).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm
from pydantic import SecretStr

from bench.bench_gateway import AUDIENCE, ISSUER, KID, SERVICES
from bench.processes import ROOT, free_port, process, process_cpu_seconds, uvicorn_args
from kit.db import make_sessionmaker
from ops.database import create_database, drop_database, embedded_server_url, prepare, with_database

SMALL = 10_000
LARGE = int(os.environ.get("RISK_BENCH_LARGE", "100000"))
HISTORY_PER_CUSTOMER = 3
CONCURRENCY = 16
CAPACITY_SECONDS = 4.0
PACED_SECONDS = 4.0
WARMUP_SECONDS = 1.0
T0 = datetime(2026, 6, 1, tzinfo=UTC)


# --- the risk server (child process) ----------------------------------------------------


def risk_app() -> FastAPI:
    """``uvicorn --factory bench.bench_risk:risk_app``: risk trusting the bench's token key."""
    from kit.auth import TokenVerifier
    from services.risk.app import create
    from services.risk.config import RiskSettings

    key = serialization.load_pem_private_key(os.environ["BENCH_SIGNING_KEY"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=KID, alg="EdDSA", use="sig")
    settings = RiskSettings(
        environment="test",
        database_url=SecretStr(os.environ["BENCH_RISK_DATABASE_URL"]),
        log_json=False,
        log_level="WARNING",
        outbox_enabled=False,
    )
    app = create(settings)
    inner = app.router.lifespan_context

    async def fetch() -> dict[str, Any]:
        return {"keys": [jwk]}

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with inner(application):
            application.state.token_verifier = TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)
            yield

    app.router.lifespan_context = lifespan
    return app


def service_token(key: Ed25519PrivateKey) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "core-banking", "kind": "service", "scope": "risk:score",
        "jti": uuid.uuid4().hex, "iat": now, "exp": now + 3600,
    }  # fmt: skip
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": KID})


# --- history ------------------------------------------------------------------------------


async def seed(url: str, start: int, end: int) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.risk.history.repository import insert_batch

    engine = create_async_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    rng = random.Random(start)
    batch: list[dict[str, Any]] = []
    async with sessions() as session:
        for customer in range(start, end):
            for n in range(HISTORY_PER_CUSTOMER):
                when = T0 - timedelta(days=rng.uniform(0.5, 29))
                batch.append(
                    {
                        "transaction_id": f"h-{customer}-{n}", "customer_key": f"c{customer}",
                        "account_id": f"a{customer}", "customer_id": f"c{customer}",
                        "payee": f"p{rng.randrange(20_000)}", "amount_minor": rng.randrange(100, 500_000),
                        "currency": "CNY", "occurred_at": when, "kind": "card_payment", "channel": "pos",
                        "source": "imported",
                    }
                )  # fmt: skip
            if len(batch) >= 1_000:
                await insert_batch(session, batch)
                await session.commit()
                batch = []
        await insert_batch(session, batch)
        await session.commit()
        from sqlalchemy import text

        await session.execute(text("ANALYZE risk.scored_transaction"))
        await session.commit()
    await engine.dispose()


# --- load -----------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    done: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu: float | None = None

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


class Bodies:
    def __init__(self, customers: int) -> None:
        self.customers = customers
        self.rng = random.Random(7)
        self.n = 0

    def __call__(self) -> bytes:
        self.n += 1
        c = self.rng.randrange(self.customers)
        body = {
            "transaction_id": uuid.uuid4().hex, "account_id": f"a{c}", "customer_id": f"c{c}",
            "payee": f"p{self.rng.randrange(20_000)}", "amount_minor": self.rng.randrange(100, 800_000),
            "currency": "CNY", "occurred_at": (T0 + timedelta(milliseconds=self.n)).isoformat(),
            "kind": "card_payment", "channel": "pos", "device_id": f"d{c}", "region": "CN-SH",
        }  # fmt: skip
        return json.dumps(body).encode()


async def drive(
    name: str, url: str, token: str, make: Callable[[], bytes] | None, *, seconds: float, rate: float | None = None
) -> Result:
    """Closed loop with CONCURRENCY clients (rate None) or open loop at ``rate``; ``make`` None: GET."""
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    latencies: list[float] = []
    errors = done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY * 4)) as session:

        async def one(record: bool) -> None:
            nonlocal errors, done
            started = time.perf_counter()
            try:
                if make is None:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                else:
                    async with session.post(url, data=make(), headers=headers) as response:
                        await response.read()
                ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            if record:
                if ok:
                    latencies.append(time.perf_counter() - started)
                    done += 1
                else:
                    errors += 1

        async def loop(until: float, record: bool) -> None:
            while time.perf_counter() < until:
                await one(record)

        warm = time.perf_counter() + WARMUP_SECONDS
        await asyncio.gather(*(loop(warm, False) for _ in range(CONCURRENCY)))
        started = time.perf_counter()
        if rate is None:
            await asyncio.gather(*(loop(started + seconds, True) for _ in range(CONCURRENCY)))
        else:
            pending: set[asyncio.Task[None]] = set()
            n = 0
            while (now := time.perf_counter()) < started + seconds:
                due = started + n / rate
                if due > now:
                    await asyncio.sleep(due - now)
                task = asyncio.create_task(one(True))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
    return Result(name, done, errors, elapsed, latencies)


def measured(pid: int, run: Callable[[], Result]) -> Result:
    before = process_cpu_seconds(pid)
    result = run()
    result.cpu = process_cpu_seconds(pid) - before
    return result


def gateway_env(env: dict[str, str], stub_port: int, risk_port: int) -> dict[str, str]:
    out = dict(env)
    out.update({f"GATEWAY_{name.upper()}_URL": f"http://127.0.0.1:{stub_port}" for name in SERVICES})
    out.update(
        GATEWAY_RISK_URL=f"http://127.0.0.1:{risk_port}",
        GATEWAY_ENVIRONMENT="test",
        GATEWAY_ROUTES_DIR=str(ROOT / "gateway" / "routes"),
        GATEWAY_RATE_LIMIT_IP="10000000/minute",
        GATEWAY_RATE_LIMIT_SUBJECT="10000000/minute",
        GATEWAY_JWKS_UPSTREAM_PATH="/.well-known/jwks.json",
    )
    return out


def line(result: Result) -> str:
    per_cpu = f"{result.done / result.cpu:8.0f}" if result.cpu else "       -"
    return (
        f"  {result.name:<42} {result.rps:8.0f}/s  per risk CPU-s {per_cpu}  p50 {result.pct(0.5):6.2f} ms"
        f"  p99 {result.pct(0.99):6.2f} ms  errors {result.errors}"
    )


def main() -> None:
    import uvloop

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    token = service_token(key)
    admin = os.environ.get("BENCH_DATABASE_URL") or embedded_server_url(ROOT / ".data" / "pg-bench")
    name = f"bench_risk_{uuid.uuid4().hex[:8]}"
    asyncio.run(create_database(admin, name))
    url = with_database(admin, name)
    try:
        asyncio.run(prepare(url, roles=False, services=("risk",)))
        started = time.perf_counter()
        asyncio.run(seed(url, 0, SMALL))
        print(f"history: {SMALL:,} customers x {HISTORY_PER_CUSTOMER} seeded in {time.perf_counter() - started:.0f}s")
        env = dict(os.environ, BENCH_SIGNING_KEY=pem, BENCH_RISK_DATABASE_URL=url, PYTHONPATH=str(ROOT))
        cpus = {0} if (os.cpu_count() or 1) > 1 else None
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        score_url = f"{base}/internal/transactions/score"
        results: list[Result] = []
        with process(uvicorn_args("bench.bench_risk:risk_app", port), env, port, cpus=cpus, timeout=90) as pid:
            health = measured(pid, lambda: uvloop.run(drive("GET /healthz (floor)", f"{base}/healthz", token, None,
                                                            seconds=CAPACITY_SECONDS)))  # fmt: skip
            capacity = measured(pid, lambda: uvloop.run(drive(f"score, closed loop, {SMALL:,}", score_url, token,
                                                              Bodies(SMALL), seconds=CAPACITY_SECONDS)))  # fmt: skip
            results += [health, capacity]
            half = max(capacity.rps / 2, 20.0)
            paced_small = measured(pid, lambda: uvloop.run(drive(f"score @ {half:.0f}/s direct, {SMALL:,}", score_url,
                                                                 token, Bodies(SMALL), seconds=PACED_SECONDS,
                                                                 rate=half)))  # fmt: skip
            results.append(paced_small)
            stub = free_port()
            with process(uvicorn_args("bench.bench_gateway:upstream_app", stub), env, stub, timeout=90):
                gw = free_port()
                with process(uvicorn_args("gateway.app:create", gw), gateway_env(env, stub, port), gw, timeout=90):
                    time.sleep(1.0)
                    via = f"http://127.0.0.1:{gw}/v1/risk/internal/transactions/score"
                    results.append(measured(pid, lambda: uvloop.run(drive(f"score @ {half:.0f}/s via gateway", via,
                                                                          token, Bodies(SMALL), seconds=PACED_SECONDS,
                                                                          rate=half))))  # fmt: skip
        started = time.perf_counter()
        asyncio.run(seed(url, SMALL, LARGE))
        print(f"history: grown to {LARGE:,} customers in {time.perf_counter() - started:.0f}s")
        with process(uvicorn_args("bench.bench_risk:risk_app", port), env, port, cpus=cpus, timeout=90) as pid:
            results.append(measured(pid, lambda: uvloop.run(drive(f"score @ {half:.0f}/s direct, {LARGE:,}", score_url,
                                                                  token, Bodies(LARGE), seconds=PACED_SECONDS,
                                                                  rate=half))))  # fmt: skip
    finally:
        with contextlib.redirect_stderr(io.StringIO()):
            asyncio.run(drop_database(admin, name))
    print(f"loopback, {CONCURRENCY} keep-alive clients; risk pinned to cpu {cpus}; cpus={os.cpu_count()}")
    for result in results:
        print(line(result))
    cap = results[1]
    per_core = cap.done / cap.cpu if cap.cpu else float("nan")
    print(
        f"  => {per_core:.0f} scored transactions per CPU-second of the risk process (goal 2,000);"
        f" healthz floor {results[0].done / results[0].cpu if results[0].cpu else float('nan'):.0f}/CPU-s;"
        f" p99 at half capacity {results[2].pct(0.99):.1f} ms direct (goal < 20 ms)"
    )


if __name__ == "__main__":
    main()
