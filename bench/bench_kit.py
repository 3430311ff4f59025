"""What the kit's guarantees cost per request: an audit append (hash chain under an
advisory lock) and an outbox enqueue, against a plain INSERT of the same row in the
same run. Sequential single-row transactions, embedded PostgreSQL (or BENCH_DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kit.audit import AuditLog, append_only_trigger_sql
from kit.db import make_metadata
from kit.outbox import Outbox
from ops.database import ROOT, asyncpg_url, create_database, drop_database, embedded_server_url, with_database

SCHEMA = "bench_kit"
ROUNDS = 1500


async def timed(label: str, rounds: int, step: Callable[[int], Awaitable[None]]) -> float:
    latencies = []
    started = time.perf_counter()
    for index in range(rounds):
        t0 = time.perf_counter()
        await step(index)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    p50 = statistics.median(latencies) * 1000
    print(f"  {label:<28} {rounds / total:8.0f} tx/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    return rounds / total


async def run(engine: AsyncEngine) -> None:
    metadata = make_metadata(SCHEMA)
    audit, outbox = AuditLog(metadata), Outbox(metadata)
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await connection.run_sync(metadata.create_all)
        for statement in append_only_trigger_sql(SCHEMA):
            await connection.execute(text(statement))
        await connection.execute(
            text(f"CREATE TABLE {SCHEMA}.plain (id uuid PRIMARY KEY, actor text, action text, detail jsonb)")
        )
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def plain(index: int) -> None:
        async with sessions() as session, session.begin():
            await session.execute(
                text(f"INSERT INTO {SCHEMA}.plain VALUES (:id, 'staff-1', 'account.freeze', CAST(:d AS jsonb))"),
                {"id": uuid.uuid4(), "d": f'{{"n": {index}}}'},
            )

    async def audited(index: int) -> None:
        async with sessions() as session, session.begin():
            await audit.append(session, actor="staff-1", action="account.freeze", detail={"n": index})

    async def enqueued(index: int) -> None:
        async with sessions() as session, session.begin():
            await outbox.enqueue(session, target="identity", path="/v1/identity/internal/x", payload={"n": index})

    await timed("warm-up (plain insert)", 200, plain)
    base = await timed("plain insert (baseline)", ROUNDS, plain)
    chain = await timed("audit append (hash chain)", ROUNDS, audited)
    box = await timed("outbox enqueue", ROUNDS, enqueued)
    print(f"  ratio audit/plain throughput: {chain / base:.2f}   outbox/plain: {box / base:.2f}")

    async with AsyncSession(engine) as session:
        report = await audit.verify(session, _public_key())
    print(f"  chain verified: {report.ok} ({report.entries_checked} entries)")


def _public_key() -> Ed25519PublicKey:
    from kit.audit import signing_key_from_secret

    return signing_key_from_secret("bench").public_key()


def main() -> None:
    server = asyncpg_url(os.environ["BENCH_DATABASE_URL"]) if os.environ.get("BENCH_DATABASE_URL") else None
    server = server or embedded_server_url(ROOT / ".data" / "pg-bench")
    name = f"bench_kit_{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        await create_database(server, name)
        engine = create_async_engine(with_database(server, name), pool_size=2)
        try:
            await run(engine)
        finally:
            await engine.dispose()
            await drop_database(server, name)

    asyncio.run(go())
