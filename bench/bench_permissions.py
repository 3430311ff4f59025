"""Permission checks at 10, 1,000 and 100,000 grants, against pycasbin, in process and over HTTP.

Measured in one run, for each size:

1. **in process**: our decision (``PolicyIndex.check`` through ``PolicyStore.check``,
   i.e. with the freshness test every request pays) and pycasbin's ``enforce``
   on the equivalent RBAC policy: the same role hierarchy (``g`` between
   roles), the same role permissions (``p`` allow lines) and the same
   explicit denies of ``system_admin`` (``p`` deny lines, deny-override
   effect), and one ``g`` line per grant. Grants have no scope and no expiry
   here, because casbin has neither; our check still evaluates them;
2. **over HTTP**: ``POST /internal/checks`` on the real app (uvicorn in a
   child process, loaded from PostgreSQL at start-up; EdDSA service token
   verified per request), driven open-loop at 1,000 checks/s by an aiohttp
   client, against ``GET /healthz`` of the same server at the same rate (the
   floor of any request).

Goals of the issue: flat cost as grants grow; at 1,000 grants at least 10x
faster than pycasbin in process; over HTTP p99 under 5 ms at 1,000 checks/s.
The machine is shared (2 cores, PostgreSQL, the load generator and the server
on it), so only same-run ratios and orders of magnitude mean anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import casbin
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench.processes import free_port
from kit.db import make_sessionmaker
from ops.database import ROOT, create_database, drop_database, embedded_server_url, prepare, with_database
from services.permissions.checks.store import ChangeKind, PolicyStore, record_change
from services.permissions.models import Permission, Role, RolePermission

SIZES = (10, 1_000, 100_000)
GRANTS_PER_SUBJECT = 2
IN_PROCESS_CHECKS = 20_000
CASBIN_CHECKS = 2_000
HTTP_RATE = 1_000
HTTP_SECONDS = 1.5
HTTP_ROUNDS = 3
SEQUENTIAL_CALLS = 2_000
ISSUER = "bank-suite-identity"
AUDIENCE = "bank-suite"
BANK_ROLES = (
    "teller",
    "customer_manager",
    "approver",
    "compliance_officer",
    "auditor",
    "system_admin",
    "risk_analyst",
    "incident_responder",
    "user",
    "manager",
)

CASBIN_MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Issuer:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = uuid.uuid4().hex[:12]

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(kid=self.kid, alg="EdDSA", use="sig")
        return {"keys": [jwk]}

    def service_token(self, name: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": name,
            "kind": "service",
            "scope": "",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


async def seed_grants(session: AsyncSession, start: int, count: int) -> list[str]:
    """Add ``count`` grants (two per subject, bank roles round robin) with COPY; returns the subjects."""
    roles = dict((await session.execute(select(Role.name, Role.id))).tuples().all())
    subjects: list[str] = []
    records = []
    for n in range(start, start + count):
        if n % GRANTS_PER_SUBJECT == 0:
            subjects.append(str(uuid.UUID(int=n + 1)))
        subject = str(uuid.UUID(int=n - n % GRANTS_PER_SUBJECT + 1))
        # Avoid the seeded SoD pairs so the data is realistic (the bench bypasses requests).
        role = BANK_ROLES[(n // GRANTS_PER_SUBJECT + n % GRANTS_PER_SUBJECT * 3) % len(BANK_ROLES)]
        records.append((uuid.uuid4(), subject, roles[role], "bench", "bench"))
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(
        "role_grant",
        schema_name="permissions",
        records=records,
        columns=["id", "subject", "role_id", "requested_by", "approved_by"],
    )
    await record_change(session, ChangeKind.model)
    return subjects


async def casbin_policy(session: AsyncSession) -> tuple[list[list[str]], list[list[str]]]:
    """The role model as casbin ``p`` lines and role-to-parent ``g`` lines."""
    roles = list((await session.execute(select(Role))).scalars())
    names = {r.id: r.name for r in roles}
    lines = [
        [names[rp.role_id], *rp.permission.split(":"), rp.effect]
        for rp in (await session.execute(select(RolePermission))).scalars()
    ]
    # Casbin's g is transitive: a role "is" its parent, so it gets the parent's p lines.
    hierarchy = [[r.name, names[r.parent_id]] for r in roles if r.parent_id is not None]
    return lines, hierarchy


def build_enforcer(p_lines: list[list[str]], hierarchy: list[list[str]], grants: list[list[str]]) -> Any:
    model = casbin.model.Model()
    model.load_model_from_text(CASBIN_MODEL)
    enforcer = casbin.Enforcer(model)
    enforcer.add_policies(p_lines)
    enforcer.add_grouping_policies(hierarchy + grants)
    return enforcer


def queries(subjects: list[str], permissions: list[str], count: int) -> list[tuple[str, str]]:
    rng = random.Random(42)
    return [(rng.choice(subjects), rng.choice(permissions)) for _ in range(count)]


async def time_ours(store: PolicyStore, checks: list[tuple[str, str]]) -> tuple[list[float], float]:
    samples = []
    allowed = 0
    for subject, permission in checks:
        started = time.perf_counter_ns()
        result = await store.check(subject, permission)
        samples.append((time.perf_counter_ns() - started) / 1000)
        allowed += result.allowed
    return samples, allowed / len(checks)


def time_casbin(enforcer: Any, checks: list[tuple[str, str]]) -> tuple[list[float], float]:
    samples = []
    allowed = 0
    for subject, permission in checks:
        obj, act = permission.split(":")
        started = time.perf_counter_ns()
        result = enforcer.enforce(subject, obj, act)
        samples.append((time.perf_counter_ns() - started) / 1000)
        allowed += bool(result)
    return samples, allowed / len(checks)


def serve(argv: list[str]) -> None:
    """Child process: the permissions app on a port, trusting the bench's token key."""
    port, url, jwks_file = int(argv[0]), argv[1], Path(argv[2])
    import uvicorn
    from pydantic import SecretStr

    from kit.auth import TokenVerifier
    from services.permissions.app import create
    from services.permissions.config import PermissionsSettings

    settings = PermissionsSettings(
        environment="test",
        database_url=SecretStr(url),
        log_json=False,
        log_level="WARNING",
        outbox_enabled=False,
    )
    app = create(settings)
    jwks = json.loads(jwks_file.read_text())
    inner = app.router.lifespan_context

    async def fetch() -> dict[str, Any]:
        return dict(jwks)

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[None]:
        async with inner(application):
            application.state.token_verifier = TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)
            yield

    app.router.lifespan_context = lifespan
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.asynccontextmanager
async def server(url: str, jwks_file: Path) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_permissions",
        "serve",
        str(port),
        url,
        str(jwks_file),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                if process.returncode is not None:
                    raise RuntimeError("the permissions server did not start")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def open_loop(call: Callable[[], Awaitable[int]], rate: int, seconds: float) -> tuple[list[float], int, float]:
    """Fire ``call`` at a fixed rate regardless of answers (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter()
        status = await call()
        latencies.append((time.perf_counter() - started) * 1000)
        errors += status != 200

    total = int(rate * seconds)
    begin = time.perf_counter() + 0.05
    await asyncio.gather(*(one(begin + i / rate) for i in range(total)))
    elapsed = time.perf_counter() - begin
    return latencies, errors, total / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def http_round(base: str, token: str, checks: list[tuple[str, str]], pid: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as http:
        picks = iter(checks * 10)

        async def check() -> int:
            subject, permission = next(picks)
            async with http.post(
                f"{base}/internal/checks", json={"subject": subject, "permission": permission}, headers=headers
            ) as response:
                await response.read()
                return response.status

        async def health() -> int:
            async with http.get(f"{base}/healthz") as response:
                await response.read()
                return response.status

        await open_loop(check, 200, 0.5)  # warm-up: connections, JWKS, caches
        # Server CPU per request does not depend on what else runs on the machine:
        # it says how many checks per second one core of this server can answer.
        cpu = {}
        for name, call in (("health", health), ("check", check)):
            before = cpu_seconds(pid)
            for _ in range(SEQUENTIAL_CALLS):
                await call()
            cpu[name] = (cpu_seconds(pid) - before) / SEQUENTIAL_CALLS * 1e6
        sequential = []
        for _ in range(SEQUENTIAL_CALLS):
            started = time.perf_counter()
            await check()
            sequential.append((time.perf_counter() - started) * 1000)
        # Interleaved rounds: the machine is shared, so a burst of someone else's work
        # hits one round of each kind rather than all of one kind.
        rounds = []
        for _ in range(HTTP_ROUNDS):
            health_lat, _, _ = await open_loop(health, HTTP_RATE, HTTP_SECONDS)
            check_lat, errors, rate = await open_loop(check, HTTP_RATE, HTTP_SECONDS)
            rounds.append({"check": check_lat, "health": health_lat, "errors": errors, "rate": rate})
    return {"rounds": rounds, "sequential": sequential, "cpu": cpu}


async def run() -> None:
    admin_url = embedded_server_url(ROOT / ".data" / "pg-bench")
    name = f"bench_permissions_{uuid.uuid4().hex[:8]}"
    await create_database(admin_url, name)
    url = with_database(admin_url, name)
    issuer = Issuer()
    token = issuer.service_token("vault")
    rows: list[dict[str, Any]] = []
    try:
        await prepare(url, roles=False, services=("permissions",))
        engine = create_async_engine(url, pool_size=4)
        sessions = make_sessionmaker(engine)
        async with sessions() as session:
            permissions = list((await session.execute(select(Permission.name))).scalars())
            p_lines, hierarchy = await casbin_policy(session)
        subjects: list[str] = []
        grants_so_far = 0
        with tempfile.TemporaryDirectory() as tmp:
            jwks_file = Path(tmp) / "jwks.json"
            jwks_file.write_text(json.dumps(issuer.jwks()))
            for size in SIZES:
                async with sessions() as session:
                    subjects += await seed_grants(session, grants_so_far, size - grants_so_far)
                    await session.commit()
                grants_so_far = size
                async with sessions() as session:
                    grant_lines = [
                        [s, r]
                        for s, r in (
                            await session.execute(
                                text(
                                    "SELECT g.subject, r.name FROM permissions.role_grant g "
                                    "JOIN permissions.role r ON r.id = g.role_id WHERE g.revoked_at IS NULL"
                                )
                            )
                        ).tuples()
                    ]
                store = PolicyStore(sessions, refresh_seconds=0.5)
                load_started = time.perf_counter()
                await store.ensure_fresh()
                load_seconds = time.perf_counter() - load_started
                checks = queries(subjects, permissions, IN_PROCESS_CHECKS)
                ours, ours_allowed = await time_ours(store, checks)
                casbin_started = time.perf_counter()
                enforcer = build_enforcer(p_lines, hierarchy, grant_lines)
                casbin_load = time.perf_counter() - casbin_started
                theirs, theirs_allowed = time_casbin(enforcer, checks[:CASBIN_CHECKS])
                ours_same, _ = await time_ours(store, checks[:CASBIN_CHECKS])
                agree = 0
                for subject, permission in checks[:500]:
                    ours_says = (await store.check(subject, permission)).allowed
                    agree += ours_says == bool(enforcer.enforce(subject, *permission.split(":")))
                async with server(url, jwks_file) as (base, pid):
                    over_http = await http_round(base, token, checks[:2000], pid)
                rows.append(
                    {
                        "size": size,
                        "load_s": load_seconds,
                        "casbin_load_s": casbin_load,
                        "ours": ours,
                        "ours_same": ours_same,
                        "casbin": theirs,
                        "allowed": (ours_allowed, theirs_allowed),
                        "agree": agree,
                        **over_http,
                    }
                )
                print(f"  measured {size:>7,} grants", flush=True)
        await engine.dispose()
    finally:
        await drop_database(admin_url, name)
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    print("\nIn process (microseconds per check; casbin on the same first 2,000 queries):")
    print(
        f"{'grants':>9} {'ours p50':>9} {'ours p99':>9} {'ours mean':>10} {'casbin p50':>11} "
        f"{'casbin mean':>12} {'casbin/ours':>12} {'agree':>6} {'index load':>11} {'casbin load':>12}"
    )
    for r in rows:
        ours_mean, casbin_mean = statistics.fmean(r["ours_same"]), statistics.fmean(r["casbin"])
        print(
            f"{r['size']:>9,} {percentile(r['ours'], 0.5):>9.1f} {percentile(r['ours'], 0.99):>9.1f} "
            f"{statistics.fmean(r['ours']):>10.1f} {percentile(r['casbin'], 0.5):>11.1f} {casbin_mean:>12.1f} "
            f"{casbin_mean / ours_mean:>11.0f}x {r['agree']:>4}/500 {r['load_s']:>10.2f}s {r['casbin_load_s']:>11.2f}s"
        )
    first, last = rows[0], rows[-1]
    growth_ours = percentile(last["ours"], 0.5) / percentile(first["ours"], 0.5)
    growth_casbin = percentile(last["casbin"], 0.5) / percentile(first["casbin"], 0.5)
    print(
        f"p50 at {last['size']:,} grants / p50 at {first['size']:,}: "
        f"ours {growth_ours:.2f}x, casbin {growth_casbin:.2f}x"
    )
    print(
        f"\nOver HTTP (milliseconds): {SEQUENTIAL_CALLS:,} sequential checks, then {HTTP_ROUNDS} interleaved "
        f"open-loop rounds of {HTTP_SECONDS:.1f} s at {HTTP_RATE:,}/s (checks and /healthz); p99 of the best "
        "and of the median round"
    )
    print(
        f"{'grants':>9} {'seq p50':>8} {'seq p99':>8} {'rate/s':>7} {'check p50':>10} {'check p99':>10} "
        f"{'(median)':>9} {'healthz p99':>12} {'(median)':>9} {'errors':>7}"
    )
    for r in rows:
        rounds = r["rounds"]
        checks99 = sorted(percentile(x["check"], 0.99) for x in rounds)
        health99 = sorted(percentile(x["health"], 0.99) for x in rounds)
        best = min(rounds, key=lambda x: percentile(x["check"], 0.99))
        print(
            f"{r['size']:>9,} {percentile(r['sequential'], 0.5):>8.2f} {percentile(r['sequential'], 0.99):>8.2f} "
            f"{min(x['rate'] for x in rounds):>7.0f} {percentile(best['check'], 0.5):>10.2f} {checks99[0]:>10.2f} "
            f"{checks99[len(checks99) // 2]:>9.2f} {health99[0]:>12.2f} {health99[len(health99) // 2]:>9.2f} "
            f"{sum(x['errors'] for x in rounds):>7}"
        )
    print("\nServer CPU per request (microseconds; user + system of the server process, sequential calls):")
    print(f"{'grants':>9} {'check':>7} {'healthz':>8} {'checks/s per core':>18}")
    for r in rows:
        print(f"{r['size']:>9,} {r['cpu']['check']:>7.0f} {r['cpu']['health']:>8.0f} {1e6 / r['cpu']['check']:>18,.0f}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("goals: flat in-process cost; >= 10x pycasbin at 1,000 grants; HTTP p99 < 5 ms at 1,000 checks/s")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2:])
    else:
        main()
