"""The outbox against a receiver that is down for a while, then up: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kit.db import Database, DBSession, make_sessionmaker
from kit.errors import BadRequest, install_error_handlers
from kit.http import ServiceClient
from kit.outbox import IdempotencyKey, MessageStatus, OutboxWorker, RetryPolicy
from tests.kit.conftest import SCHEMA, inbox, outbox
from tests.support.live import LiveServer

FAST = RetryPolicy(max_attempts=50, base_seconds=0.02, max_seconds=0.1)


def receiver_app(engine: AsyncEngine) -> FastAPI:
    """A service applying 'freeze' effects, deduplicated by the kit's inbox."""
    app = FastAPI()
    install_error_handlers(app)
    app.state.database = Database(engine=engine, sessionmaker=make_sessionmaker(engine))

    @app.post("/internal/freeze")
    async def freeze(
        body: dict[str, str],
        key: IdempotencyKey,
        session: DBSession,
        request: Request,
    ) -> dict[str, str]:
        if body.get("account") == "refuse-me":
            raise BadRequest("unknown account")
        if not await inbox.first_delivery(session, key):
            return {"status": "duplicate"}
        await session.execute(
            text(f"INSERT INTO {SCHEMA}.effect (idempotency_key, account) VALUES (:k, :a)"),
            {"k": key, "a": body["account"]},
        )
        return {"status": "applied"}

    return app


@pytest.fixture
async def effects(kit_engine: AsyncEngine) -> AsyncEngine:
    async with kit_engine.begin() as connection:
        await connection.execute(
            text(f"CREATE TABLE {SCHEMA}.effect (id serial PRIMARY KEY, idempotency_key text, account text)")
        )
    return kit_engine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def client_to_port() -> AsyncIterator[tuple[int, ServiceClient]]:
    port = free_port()
    client = ServiceClient(f"http://127.0.0.1:{port}", timeout=2.0, retries=0)
    yield port, client
    await client.aclose()


async def enqueue(engine: AsyncEngine, accounts: list[str]) -> list[str]:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    keys = []
    async with sessions() as session, session.begin():
        for account in accounts:
            keys.append(
                await outbox.enqueue(session, target="identity", path="/internal/freeze", payload={"account": account})
            )
    return keys


async def count(engine: AsyncEngine, sql: str) -> int:
    async with AsyncSession(engine) as session:
        return int((await session.execute(text(sql))).scalar_one())


async def drain(worker: OutboxWorker, engine: AsyncEngine, rounds: int = 200) -> None:
    for _ in range(rounds):
        await worker.deliver_due()
        pending = await count(engine, f"SELECT count(*) FROM {SCHEMA}.outbox_message WHERE status = 'pending'")
        if pending == 0:
            return
        await asyncio.sleep(0.03)
    raise AssertionError("outbox did not drain")


async def test_nothing_lost_nothing_applied_twice(
    effects: AsyncEngine, client_to_port: tuple[int, ServiceClient]
) -> None:
    port, client = client_to_port
    accounts = [f"acct-{i}" for i in range(10)]
    await enqueue(effects, accounts)
    worker = OutboxWorker(
        outbox, async_sessionmaker(effects, expire_on_commit=False), client, service="test", policy=FAST
    )

    # The receiver is down: every attempt fails and is rescheduled, nothing is lost.
    for _ in range(3):
        await worker.deliver_due()
        await asyncio.sleep(0.05)
    assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.outbox_message WHERE status = 'pending'") == 10
    assert await count(effects, f"SELECT min(attempts) FROM {SCHEMA}.outbox_message") >= 1

    # The receiver comes up on the same address.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    sock.setblocking(False)
    server = LiveServer("receiver", sock)
    await server.start(receiver_app(effects))
    try:
        await drain(worker, effects)
        assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.outbox_message WHERE status = 'delivered'") == 10
        assert await count(effects, f"SELECT count(DISTINCT account) FROM {SCHEMA}.effect") == 10
        assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.effect") == 10

        # A worker that crashed after delivering but before recording it delivers again:
        # the receiver acknowledges and does not apply it a second time.
        async with effects.begin() as connection:
            await connection.execute(update(outbox.messages).values(status=MessageStatus.pending))
        await drain(worker, effects)
        assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.effect") == 10
    finally:
        await server.stop()


async def test_concurrent_duplicates_apply_once(effects: AsyncEngine) -> None:
    transport = httpx.ASGITransport(app=receiver_app(effects))
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        responses = await asyncio.gather(
            *(
                client.post("/internal/freeze", json={"account": "same"}, headers={"Idempotency-Key": "key-000001"})
                for _ in range(8)
            )
        )
    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["status"] for r in responses) == ["applied"] + ["duplicate"] * 7
    assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.effect") == 1


async def test_a_refused_message_is_dead_not_retried(effects: AsyncEngine) -> None:
    transport = httpx.ASGITransport(app=receiver_app(effects))
    client = ServiceClient("http://receiver", transport=transport, retries=0)
    await enqueue(effects, ["refuse-me"])
    worker = OutboxWorker(
        outbox, async_sessionmaker(effects, expire_on_commit=False), client, service="test", policy=FAST
    )
    await worker.deliver_due()
    async with AsyncSession(effects) as session:
        row = (await session.execute(select(outbox.messages))).one()
    assert row.status == MessageStatus.dead
    assert row.attempts == 1
    assert row.last_error.startswith("400")
    await client.aclose()


async def test_a_message_enqueued_in_a_rolled_back_transaction_is_never_sent(effects: AsyncEngine) -> None:
    sessions = async_sessionmaker(effects, expire_on_commit=False)
    async with sessions() as session:
        await outbox.enqueue(session, target="identity", path="/internal/freeze", payload={"account": "x"})
        await session.rollback()
    async with AsyncSession(effects) as session:
        assert (await session.execute(select(func.count()).select_from(outbox.messages))).scalar_one() == 0


async def test_two_workers_never_deliver_the_same_row_at_once(effects: AsyncEngine) -> None:
    await enqueue(effects, [f"acct-{i}" for i in range(30)])
    transport = httpx.ASGITransport(app=receiver_app(effects))
    clients = [ServiceClient("http://receiver", transport=transport, retries=0) for _ in range(2)]
    workers = [
        OutboxWorker(
            outbox, async_sessionmaker(effects, expire_on_commit=False), c, service="t", policy=FAST, batch_size=5
        )
        for c in clients
    ]
    for _ in range(10):
        await asyncio.gather(*(w.deliver_due() for w in workers))
    assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.outbox_message WHERE status = 'delivered'") == 30
    assert await count(effects, f"SELECT max(attempts) FROM {SCHEMA}.outbox_message") == 1
    assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.effect") == 30
    for c in clients:
        await c.aclose()


async def test_a_deferred_message_waits_and_can_be_taken_back(effects: AsyncEngine) -> None:
    """A dead man's switch: armed in one transaction, disarmed by another, fired only when left armed."""
    transport = httpx.ASGITransport(app=receiver_app(effects))
    client = ServiceClient("http://receiver", transport=transport, retries=0)
    worker = OutboxWorker(
        outbox, async_sessionmaker(effects, expire_on_commit=False), client, service="test", policy=FAST
    )
    sessions = async_sessionmaker(effects, expire_on_commit=False)
    later = datetime.now(UTC) + timedelta(hours=1)
    async with sessions() as session, session.begin():
        for account in ("disarmed", "left-armed"):
            await outbox.enqueue(
                session,
                target="identity",
                path="/internal/freeze",
                payload={"account": account},
                idempotency_key=f"switch:{account}",
                not_before=later,
            )
    assert await worker.deliver_due() == 0  # not yet due
    async with sessions() as session, session.begin():
        assert await outbox.cancel(session, "switch:disarmed")
        assert not await outbox.cancel(session, "switch:never-armed")
    # Time passes for the one left armed.
    async with sessions() as session, session.begin():
        await session.execute(
            update(outbox.messages)
            .where(outbox.messages.c.idempotency_key == "switch:left-armed")
            .values(next_attempt_at=datetime.now(UTC))
        )
    await drain(worker, effects)
    assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.effect WHERE account = 'left-armed'") == 1
    assert await count(effects, f"SELECT count(*) FROM {SCHEMA}.effect WHERE account = 'disarmed'") == 0
    async with sessions() as session, session.begin():
        assert not await outbox.cancel(session, "switch:left-armed")  # delivered: too late to take back
    await client.aclose()


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=60)
    assert 0.5 <= policy.delay(1) <= 1
    assert 4 <= policy.delay(4) <= 8
    assert 30 <= policy.delay(30) <= 60
