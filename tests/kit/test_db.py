"""The pool's checks at checkout: a connection the server closed is replaced without a round trip, an idle
one is pinged, and one that breaks under a statement is a 503, never a 500; a flush only when there is
something to write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

from kit.db import DBSession, flush_pending, own_transaction
from kit.errors import BadRequest
from services.risk.app import create
from tests.kit.conftest import break_begin_of_the_pooled_connection
from tests.support.suite import service_settings


def backend_router() -> APIRouter:
    router = APIRouter()

    @router.get("/demo/backend")
    async def backend(session: DBSession) -> dict[str, int]:
        """Which PostgreSQL backend served the request."""
        return {"pid": int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())}

    @router.post("/demo/refused")
    async def refused(session: DBSession, request: Request) -> None:
        """Writes in the request's transaction, records the refusal in its own, then refuses."""
        await session.execute(text("INSERT INTO public.kept_notes VALUES ('request')"))
        async with own_transaction(request, session) as own:
            await own.execute(text("INSERT INTO public.kept_notes VALUES ('refusal')"))
        raise BadRequest("refused on purpose")

    return router


class PingCounter:
    """Counts the dialect's pings (and can make the next ones fail)."""

    def __init__(self, app: FastAPI) -> None:
        self.dialect = app.state.database.engine.sync_engine.dialect
        self.original: Callable[[Any], bool] = self.dialect.do_ping
        self.count = 0
        self.failures_left = 0
        self.dialect.do_ping = self.ping

    def ping(self, dbapi_connection: Any) -> bool:
        self.count += 1
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionResetError("the ping went nowhere")
        return self.original(dbapi_connection)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def served(
    fresh_database_url: str, settings_overrides: dict[str, Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, PingCounter, FastAPI]]:
    # One connection and no background work: the test's requests are the only ones using it.
    overrides = {"db_pool_size": 1, "db_max_overflow": 0, "outbox_enabled": False, **settings_overrides}
    application = create(service_settings("risk", fresh_database_url, **overrides))
    application.include_router(backend_router())
    async with application.router.lifespan_context(application):
        pings = PingCounter(application)
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as client:
            yield client, pings, application


async def backend_pid(client: httpx.AsyncClient) -> int:
    response = await client.get("/demo/backend")
    assert response.status_code == 200, response.text
    pid: int = response.json()["pid"]
    return pid


async def terminate(app: FastAPI, pid: int, *, wait: bool = True) -> None:
    """Ends a backend as a restart or failover would (from a connection outside the service's pool),
    by default waiting until it is gone."""
    engine = create_async_engine(app.state.settings.database_url.get_secret_value(), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            query = "SELECT pg_terminate_backend(:pid, 5000)" if wait else "SELECT pg_terminate_backend(:pid)"
            await connection.execute(text(query), {"pid": pid})
    finally:
        await engine.dispose()


async def test_a_connection_just_back_from_a_request_is_reused_without_a_ping(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    client, pings, _ = served
    first = await backend_pid(client)
    assert [await backend_pid(client) for _ in range(5)] == [first] * 5
    assert pings.count == 0


@pytest.mark.parametrize("settings_overrides", [{"db_pool_ping_idle_seconds": 0}])
async def test_a_connection_idle_past_the_limit_is_pinged_before_use(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    client, pings, _ = served
    await backend_pid(client)  # a new connection: nothing to ping
    for _ in range(3):
        await backend_pid(client)
    assert pings.count >= 3  # the requests' checkouts (background work may add its own)


@pytest.mark.parametrize("settings_overrides", [{"db_pool_ping_idle_seconds": 0}])
async def test_a_connection_that_fails_its_ping_is_replaced_and_the_request_served(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    client, pings, _ = served
    first = await backend_pid(client)
    pings.failures_left = 1
    assert await backend_pid(client) != first
    assert pings.failures_left == 0


async def test_a_connection_the_server_closed_is_replaced_at_checkout_without_a_failed_request(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    client, pings, app = served
    first = await backend_pid(client)
    await terminate(app, first)
    # The service's event loop reads the server's goodbye on the idle socket; asyncpg marks the
    # connection closed, and the checkout sees it without asking the server.
    await asyncio.sleep(0.05)
    assert await backend_pid(client) != first
    assert pings.count == 0


async def test_a_connection_that_breaks_under_a_statement_is_a_503_then_the_service_recovers(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    """The server's termination notice races the request's first statement (asyncpg reports its protocol
    in a broken state): that request fails cleanly with a retryable 503, the connection is discarded."""
    client, _, app = served
    first = await backend_pid(client)
    statuses = []
    for _ in range(3):
        await terminate(app, first, wait=False)
        response = await client.get("/demo/backend")
        statuses.append(response.status_code)
        if response.status_code == 200:
            first = response.json()["pid"]
            continue
        assert response.status_code == 503
        problem = response.json()
        assert problem["code"] == "database_unavailable"
        assert response.headers["retry-after"] == "2"
        first = await backend_pid(client)
    assert 500 not in statuses


async def test_a_driver_left_in_a_broken_state_is_a_503_and_its_connection_is_discarded(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the server's termination notice races a request's first statement, asyncpg reports its
    protocol in a broken state (InternalClientError, seen in practice as "cannot switch to state 15;
    another operation (2) is in progress"). Reproduced here on the pooled connection's BEGIN."""
    client, _, app = served
    first = await backend_pid(client)
    await break_begin_of_the_pooled_connection(app, monkeypatch)
    failed = await client.get("/demo/backend")
    assert failed.status_code == 503
    assert failed.json()["code"] == "database_unavailable"
    assert failed.headers["retry-after"] == "2"
    assert await backend_pid(client) != first


@pytest.mark.parametrize("settings_overrides", [{"db_pool_pre_ping": False}])
async def test_with_the_checks_off_a_connection_that_died_in_the_pool_fails_one_request_with_a_503(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    client, pings, app = served
    first = await backend_pid(client)
    await terminate(app, first)
    failed = await client.get("/demo/backend")
    assert failed.status_code == 503
    assert failed.json()["code"] == "database_unavailable"
    assert await backend_pid(client) != first
    assert pings.count == 0


async def test_a_write_in_its_own_transaction_survives_the_request_rollback_and_the_request_write_does_not(
    served: tuple[httpx.AsyncClient, PingCounter, FastAPI],
) -> None:
    client, _, app = served
    engine = create_async_engine(app.state.settings.database_url.get_secret_value(), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE public.kept_notes (note text)"))
        response = await client.post("/demo/refused")
        assert response.status_code == 400
        async with engine.connect() as connection:
            notes = (await connection.execute(text("SELECT note FROM public.kept_notes"))).scalars().all()
    finally:
        await engine.dispose()
    assert notes == ["refusal"]


async def test_flush_pending_writes_what_the_unit_of_work_holds_and_skips_an_empty_flush(
    db_session: AsyncSession,
) -> None:
    flushes: list[int] = []
    event.listen(db_session.sync_session, "before_flush", lambda *_: flushes.append(1))
    await flush_pending(db_session)
    assert flushes == []
    await db_session.execute(text("CREATE TEMP TABLE pending_note (id int PRIMARY KEY)"))
    db_session.add(PendingNote(id=7))
    await flush_pending(db_session)
    assert flushes == [1]
    assert (await db_session.execute(text("SELECT count(*) FROM pending_note"))).scalar_one() == 1


class _NoteBase(DeclarativeBase):
    pass


class PendingNote(_NoteBase):
    __tablename__ = "pending_note"

    id: Mapped[int] = mapped_column(primary_key=True)
