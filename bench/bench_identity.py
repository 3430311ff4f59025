"""Identity: login throughput against the raw argon2id verify rate, and refresh-token rotation.

All in one process on the same cores: the identity app (in process, through
its full ASGI stack, real PostgreSQL: embedded, or BENCH_DATABASE_URL) and,
as the baseline, bare argon2id verifications with the same parameters and the
same concurrency. The ratio login/s over verify/s is the figure (goal >= 0.8:
a login should cost little more than its password hash). Refresh rotations are
compared with the same stack's cheapest request (GET /healthz) and with
Keycloak's sizing anchor (120 refreshes/s per vCPU).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pyotp
from fastapi import FastAPI
from pydantic import SecretStr

from ops.database import ROOT, asyncpg_url, create_database, drop_database, embedded_server_url, prepare, with_database
from services.identity.accounts.service import NewCustomer, register_customer
from services.identity.app import create
from services.identity.config import IdentitySettings
from services.identity.mfa.service import start_totp, verify_totp
from services.identity.models import Account, CustomerProfile
from services.identity.passwords.hashing import Passwords
from services.identity.runtime import Runtime

PASSWORD = "Quiet-Harbour-7-Lantern!"  # noqa: S105 (bench accounts only)
CONCURRENCY = 8
LOGINS = 160
TOTP_LOGINS = 60
ROTATIONS = 1500
CORES = os.cpu_count() or 1


async def drive(total: int, concurrency: int, step: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run ``step(i)`` for i < total with ``concurrency`` workers; (ops/s, latencies in ms)."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for index in counter:
            started = time.perf_counter()
            await step(index)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started), latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def _national_id(index: int) -> str:
    from services.identity.accounts.validation import iso7064_mod11_2_check

    body = f"11010519900307{index % 1000:03d}"
    return body + iso7064_mod11_2_check(body)


async def _accounts(app: FastAPI, count: int, offset: int) -> list[tuple[uuid.UUID, str]]:
    """Customers with verified phones: (id, phone)."""
    runtime: Runtime = app.state.identity
    made = []
    async with app.state.database.sessionmaker() as session:
        for i in range(offset, offset + count):
            phone = f"+86139{i:08d}"
            account = await register_customer(
                session,
                runtime,
                NewCustomer("Bench", "passport", f"B{i:08d}", phone, f"bench{i}@example.com", PASSWORD),
            )
            profile = await session.get(CustomerProfile, account.id)
            assert profile is not None
            profile.phone_verified_at = datetime.now(UTC)
            made.append((account.id, phone))
        await session.commit()
    return made


async def _population(
    app: FastAPI,
) -> tuple[list[tuple[uuid.UUID, str]], list[tuple[uuid.UUID, str]], dict[uuid.UUID, pyotp.TOTP]]:
    """Password-only customers, and customers with a confirmed authenticator (and its TOTP)."""
    customers = await _accounts(app, LOGINS // 4, 0)
    totp_customers = await _accounts(app, TOTP_LOGINS, 10_000)
    runtime: Runtime = app.state.identity
    secrets: dict[uuid.UUID, pyotp.TOTP] = {}
    async with app.state.database.sessionmaker() as session:
        for account_id, _ in totp_customers:
            account = await session.get(Account, account_id)
            assert account is not None
            enrolment = await start_totp(session, runtime, account, "bench")
            totp = pyotp.TOTP(enrolment.secret)
            # Confirm with the previous step's code, so the current one is free for the login.
            assert await verify_totp(session, runtime, account_id, totp.at(time.time() - 30), confirming=True)
            secrets[account_id] = totp
        await session.commit()
    return customers, totp_customers, secrets


Measured = tuple[float, list[float]]


def _report(
    settings: IdentitySettings, *, raw: Measured, login: Measured, totp: Measured, rotation: Measured, floor: float
) -> None:
    (raw_rate, raw_lat), (login_rate, login_lat), (totp_rate, totp_lat), (rotate_rate, rotate_lat) = (
        raw,
        login,
        totp,
        rotation,
    )
    print(
        f"cores: {CORES}, concurrency {CONCURRENCY}, "
        f"argon2id m={settings.argon2_memory_kib} KiB t={settings.argon2_time_cost}"
    )
    print(f"raw argon2id verify        {raw_rate:8.1f}/s   p50 {statistics.median(raw_lat):6.1f} ms")
    print(
        f"login (password)           {login_rate:8.1f}/s   p50 {statistics.median(login_lat):6.1f} ms"
        f"   p99 {p99(login_lat):6.1f} ms   ratio to raw verify {login_rate / raw_rate:.2f} (goal >= 0.80)"
    )
    print(
        f"login (password + TOTP)    {totp_rate:8.1f}/s   p50 {statistics.median(totp_lat):6.1f} ms"
        f"   p99 {p99(totp_lat):6.1f} ms   ratio to raw verify {totp_rate / raw_rate:.2f}"
    )
    print(
        f"refresh rotation           {rotate_rate:8.1f}/s   p50 {statistics.median(rotate_lat):6.1f} ms"
        f"   p99 {p99(rotate_lat):6.1f} ms   per core {rotate_rate / CORES:.0f}/s (goal > 300; Keycloak 120/vCPU)"
    )
    print(f"GET /healthz (stack floor) {floor:8.1f}/s   rotation costs {floor / rotate_rate:.1f}x the floor")


async def run(url: str) -> None:
    settings = IdentitySettings(
        environment="test",
        database_url=SecretStr(url),
        risk_scoring_enabled=False,
        outbox_enabled=False,
        log_json=False,
        log_level="WARNING",
        db_pool_size=CONCURRENCY + 2,
    )
    app = create(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://identity.bench", timeout=60) as client:
            customers, totp_customers, secrets = await _population(app)

            # Baseline: argon2id verify alone, same parameters, same concurrency, same thread pool.
            passwords = Passwords(settings)
            stored = passwords.hash_sync(PASSWORD)

            async def raw_verify(_: int) -> None:
                assert await passwords.verify(stored, PASSWORD)

            await drive(CONCURRENCY, CONCURRENCY, raw_verify)  # warm-up
            raw_rate, raw_lat = await drive(LOGINS, CONCURRENCY, raw_verify)

            async def password_login(index: int) -> None:
                _, phone = customers[index % len(customers)]
                response = await client.post("/public/login", json={"identifier": phone, "password": PASSWORD})
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "authenticated"

            login_rate, login_lat = await drive(LOGINS, CONCURRENCY, password_login)

            async def totp_login(index: int) -> None:
                account_id, phone = totp_customers[index]
                challenge = (
                    await client.post("/public/login", json={"identifier": phone, "password": PASSWORD})
                ).json()
                code = secrets[account_id].now()
                done = await client.post(
                    "/public/login/challenge/verify",
                    json={"challenge": challenge["challenge"], "method": "otp", "code": code},
                )
                assert done.status_code == 200, done.text

            totp_rate, totp_lat = await drive(TOTP_LOGINS, CONCURRENCY, totp_login)

            # Refresh rotation: many sessions, each chain rotated in turn.
            chains: list[str] = []
            for _, phone in customers[: CONCURRENCY * 4]:
                body = (await client.post("/public/login", json={"identifier": phone, "password": PASSWORD})).json()
                chains.append(body["refresh_token"])
            locks = [asyncio.Lock() for _ in chains]

            async def rotate(index: int) -> None:
                slot = index % len(chains)
                async with locks[slot]:
                    response = await client.post("/public/token/refresh", json={"refresh_token": chains[slot]})
                    assert response.status_code == 200, response.text
                    chains[slot] = response.json()["refresh_token"]

            await drive(CONCURRENCY * 2, CONCURRENCY, rotate)  # warm-up
            rotate_rate, rotate_lat = await drive(ROTATIONS, CONCURRENCY, rotate)

            async def health(_: int) -> None:
                assert (await client.get("/healthz")).status_code == 200

            floor_rate, _ = await drive(ROTATIONS, CONCURRENCY, health)

    _report(
        settings,
        raw=(raw_rate, raw_lat),
        login=(login_rate, login_lat),
        totp=(totp_rate, totp_lat),
        rotation=(rotate_rate, rotate_lat),
        floor=floor_rate,
    )


def main() -> None:
    server = asyncpg_url(os.environ["BENCH_DATABASE_URL"]) if os.environ.get("BENCH_DATABASE_URL") else None
    server = server or embedded_server_url(ROOT / ".data" / "pg-bench")
    name = f"bench_identity_{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        await create_database(server, name)
        try:
            url = with_database(server, name)
            await prepare(url, roles=False, services=("identity",))
            await run(url)
        finally:
            await drop_database(server, name)

    asyncio.run(go())
