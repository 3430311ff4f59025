"""Statements run by asyncpg in the request's transaction: same transaction, values, errors and spans as
SQLAlchemy's own statements."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import DateTime, String, Uuid, bindparam, column, literal, select, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import DBSession, make_metadata, make_sessionmaker
from kit.statements import Statement, attach
from kit.telemetry import instrument_engine
from services.risk.app import create
from tests.kit.conftest import break_begin_of_the_pooled_connection
from tests.support.database import TestDatabases
from tests.support.suite import service_settings

PHONE = "13812345678"

NOTE = table(
    "statement_note",
    column("id", Uuid()),
    column("body", String()),
    column("meta", JSONB()),
    column("at", DateTime(timezone=True)),
    schema="risk",
)
CREATE_NOTE = (
    "CREATE TABLE IF NOT EXISTS risk.statement_note (id uuid PRIMARY KEY, body text UNIQUE, meta jsonb, at timestamptz)"
)

INSERT_NOTE = Statement(
    text(
        "INSERT INTO risk.statement_note (id, body, meta, at) VALUES (:id, :body, :meta, :at) RETURNING id"
    ).bindparams(
        bindparam("id", type_=Uuid()),
        bindparam("body", type_=String()),
        bindparam("meta", type_=JSONB()),
        bindparam("at", type_=DateTime(timezone=True)),
    )
)
COUNT_NOTES = Statement(text("SELECT count(*) FROM risk.statement_note"))
#: A literal in the construct ("second") is sent without the caller naming it.
SECOND_NOTES = Statement(
    select(NOTE.c.id, NOTE.c.meta).where(NOTE.c.body == bindparam("body"), NOTE.c.meta["rank"].astext == "second")
)


@pytest.fixture
async def engine(test_databases: TestDatabases) -> AsyncIterator[AsyncEngine]:
    url = await test_databases.clone("statements")
    engine = create_async_engine(url, pool_size=2, max_overflow=0)
    async with engine.begin() as connection:
        await connection.execute(text(CREATE_NOTE))
    yield engine
    await engine.dispose()


async def note_count(engine: AsyncEngine) -> int:
    async with make_sessionmaker(engine)() as session:
        return int(await COUNT_NOTES.fetchval(session))


def note(body: str = "first", rank: str = "first") -> dict[str, Any]:
    return {"id": uuid.uuid4(), "body": body, "meta": {"rank": rank, "tags": ["a", "b"]}, "at": datetime.now(UTC)}


async def test_values_go_in_and_come_back_as_sqlalchemy_sends_and_reads_them(engine: AsyncEngine) -> None:
    written = note("second", rank="second")
    async with make_sessionmaker(engine)() as session:
        assert await INSERT_NOTE.fetchval(session, written) == written["id"]
        row = await SECOND_NOTES.fetchrow(session, {"body": "second"})
        assert row is not None
        assert (row["id"], row["meta"]) == (written["id"], written["meta"])
        # What SQLAlchemy itself reads from the same row.
        through_sqlalchemy = (await session.execute(select(NOTE.c.meta, NOTE.c.at))).one()
        assert through_sqlalchemy.meta == written["meta"]
        assert through_sqlalchemy.at == written["at"]


async def test_a_statement_first_in_a_transaction_is_rolled_back_with_it(engine: AsyncEngine) -> None:
    """Nothing ran through SQLAlchemy before it: the statement begins the session's transaction itself."""
    async with make_sessionmaker(engine)() as session:
        await INSERT_NOTE.execute(session, note())
        await session.rollback()
    assert await note_count(engine) == 0


async def test_statements_and_sqlalchemy_share_one_transaction(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        await session.execute(text("INSERT INTO risk.statement_note (id, body) VALUES (gen_random_uuid(), 'orm')"))
        await INSERT_NOTE.execute(session, note())
        assert await COUNT_NOTES.fetchval(session) == 2
        assert await note_count(engine) == 0  # another transaction sees nothing yet
        await session.commit()
    assert await note_count(engine) == 2


async def test_after_a_commit_the_next_statement_runs_in_the_next_transaction(engine: AsyncEngine) -> None:
    """As a refused login does: its bookkeeping is committed, what follows in the request is not."""
    async with make_sessionmaker(engine)() as session:
        await INSERT_NOTE.execute(session, note("kept"))
        await session.commit()
        await INSERT_NOTE.execute(session, note("dropped"))
        await session.rollback()
    assert await note_count(engine) == 1


async def test_a_constraint_is_sqlalchemys_integrity_error_without_the_parameters(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        await INSERT_NOTE.execute(session, note(PHONE))
        with pytest.raises(IntegrityError) as raised:
            await INSERT_NOTE.execute(session, note(PHONE, rank="secret-rank"))
    assert isinstance(raised.value.orig, asyncpg.exceptions.UniqueViolationError)
    # PostgreSQL's own message quotes the duplicated key, as through SQLAlchemy (kit.errors logs the
    # class only); the statement's parameters are never added to it.
    assert "secret-rank" not in str(raised.value)
    assert "[parameters" not in str(raised.value)


async def test_a_value_of_the_wrong_type_is_a_bug_not_a_lost_connection(engine: AsyncEngine) -> None:
    """asyncpg refuses it before sending anything: SQLAlchemy's DBAPIError (a 500, as through SQLAlchemy),
    and the connection stays in the pool."""
    backend = Statement(text("SELECT pg_backend_pid()"))
    async with make_sessionmaker(engine)() as session:
        before = await backend.fetchval(session)
        with pytest.raises(DBAPIError) as raised:
            await INSERT_NOTE.execute(session, note() | {"body": 13812345678})
        assert isinstance(raised.value.orig, asyncpg.exceptions.DataError)
        assert not raised.value.connection_invalidated
        await session.rollback()
        assert await backend.fetchval(session) == before


async def test_a_missing_parameter_is_named(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        with pytest.raises(TypeError, match="'meta'"):
            await INSERT_NOTE.execute(session, {"id": uuid.uuid4(), "body": "x", "at": None})


def test_an_in_list_parameter_is_refused_when_the_statement_is_built() -> None:
    with pytest.raises(ValueError, match="expanding"):
        Statement(select(NOTE.c.id).where(NOTE.c.body.in_(bindparam("bodies", expanding=True))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=6, unique=True),
    order=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=10),
    values=st.lists(st.text(max_size=20).filter(lambda v: "\x00" not in v), min_size=6, max_size=6),
)
async def test_each_name_lands_in_every_place_it_is_used(
    engine: AsyncEngine, names: list[str], order: list[int], values: list[str]
) -> None:
    """Named parameters, some used twice, some never, in any order: asyncpg gets each where it belongs."""
    used = [names[index % len(names)] for index in order]
    statement = Statement(select(*(bindparam(name, type_=String()).label(f"c{i}") for i, name in enumerate(used))))
    params = dict(zip(names, values, strict=False))
    async with make_sessionmaker(engine)() as session:
        row = await statement.fetchrow(session, params)
    assert row is not None
    assert list(row.values()) == [params[name] for name in used]


async def test_each_statement_is_a_client_span_and_a_failure_names_the_error_type_only(
    engine: AsyncEngine, clear_spans: InMemorySpanExporter
) -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    instrument_engine(engine, provider)  # type: ignore[arg-type]
    async with make_sessionmaker(engine)() as session:
        await INSERT_NOTE.execute(session, note(PHONE))
        with pytest.raises(IntegrityError):
            await INSERT_NOTE.execute(session, note(PHONE))
        await session.rollback()
        await session.execute(select(literal(1)))
    spans = [s for s in clear_spans.get_finished_spans() if s.instrumentation_scope.name == "kit.sql"]  # type: ignore[union-attr]
    written, refused, through_sqlalchemy = spans
    assert written.name == refused.name == f"INSERT {engine.url.database}"
    assert written.kind is SpanKind.CLIENT
    mine, theirs = dict(written.attributes or {}), dict(through_sqlalchemy.attributes or {})
    per_statement = {"db.query.text", "db.operation.name"}
    assert {key: mine[key] for key in theirs if key not in per_statement} == {
        key: theirs[key] for key in theirs if key not in per_statement
    }
    assert mine["db.operation.name"] == "INSERT"
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.status.description == "UniqueViolationError"
    for recorded in (refused.status.description, *map(str, dict(refused.attributes or {}).values())):
        assert PHONE not in str(recorded)


# --- In a service: the request's transaction, its problems, a connection lost under a statement


def notes_router() -> APIRouter:
    router = APIRouter()

    @router.post("/demo/notes/{body}")
    async def add(body: str, session: DBSession) -> dict[str, Any]:
        await INSERT_NOTE.execute(session, note(body))
        if body == "refused":
            raise RuntimeError("after the write")
        if body == "cut":
            await Statement(text("SELECT pg_terminate_backend(pg_backend_pid())")).fetchval(session)
        return {"backend": await Statement(text("SELECT pg_backend_pid()")).fetchval(session)}

    return router


@pytest.fixture
async def served(fresh_database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    application = create(
        service_settings("risk", fresh_database_url, db_pool_size=1, db_max_overflow=0, outbox_enabled=False)
    )
    application.include_router(notes_router())
    async with application.router.lifespan_context(application):
        async with application.state.database.engine.begin() as connection:
            await connection.execute(text(CREATE_NOTE))
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as client:
            yield client, application


async def stored(app: FastAPI) -> int:
    async with app.state.database.sessionmaker() as session:
        return int(await COUNT_NOTES.fetchval(session))


async def test_the_request_commits_or_rolls_back_the_statements(served: tuple[httpx.AsyncClient, FastAPI]) -> None:
    client, app = served
    assert (await client.post("/demo/notes/kept")).status_code == 200
    assert (await client.post("/demo/notes/refused")).status_code == 500
    assert await stored(app) == 1


async def test_a_duplicate_is_a_409_problem(served: tuple[httpx.AsyncClient, FastAPI]) -> None:
    client, app = served
    assert (await client.post("/demo/notes/twice")).status_code == 200
    refused = await client.post("/demo/notes/twice")
    assert refused.status_code == 409
    assert refused.json()["code"] == "conflict"
    assert "Key (" not in refused.text  # PostgreSQL's detail stays out of the problem
    assert await stored(app) == 1


async def test_a_connection_lost_under_a_statement_is_a_503_and_never_handed_out_again(
    served: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    """The server ends the connection while the statement runs (as a failover or an operator would)."""
    client, app = served
    first = (await client.post("/demo/notes/one")).json()["backend"]
    cut = await client.post("/demo/notes/cut")
    assert cut.status_code == 503
    assert cut.json()["code"] == "database_unavailable"
    assert cut.headers["retry-after"] == "2"
    after = await client.post("/demo/notes/two")
    assert after.status_code == 200
    assert after.json()["backend"] != first
    assert await stored(app) == 2  # the cut request's write went with its connection


async def test_a_driver_broken_at_begin_is_a_503_and_its_connection_is_discarded(
    served: tuple[httpx.AsyncClient, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement begins the transaction itself (nothing ran before it in the request): asyncpg's
    protocol found broken there (InternalClientError) is a retryable 503 like everywhere else."""
    client, app = served
    first = (await client.post("/demo/notes/one")).json()["backend"]
    await break_begin_of_the_pooled_connection(app, monkeypatch)
    failed = await client.post("/demo/notes/two")
    assert failed.status_code == 503
    assert failed.json()["code"] == "database_unavailable"
    monkeypatch.undo()
    after = await client.post("/demo/notes/three")
    assert after.status_code == 200
    assert after.json()["backend"] != first
    assert await stored(app) == 2


async def test_the_adapter_attributes_this_relies_on_exist(engine: AsyncEngine) -> None:
    """kit.statements begins SQLAlchemy's asyncpg adapter's transaction through these (see its docstring)."""
    async with engine.connect() as connection:
        await connection.begin()
        adapter: Any = (await connection.get_raw_connection()).dbapi_connection

        def started() -> bool:
            return bool(adapter._started)

        assert not started()  # the adapter begins lazily
        await adapter._start_transaction()
        assert started()
        await connection.rollback()
        assert not started()


async def test_a_session_bound_to_a_connection_in_a_transaction_uses_it(engine: AsyncEngine) -> None:
    """As the tests' ``db_session`` fixture binds one: the outer transaction's rollback undoes the statement."""
    async with engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        await INSERT_NOTE.execute(session, note())
        await session.commit()
        assert await COUNT_NOTES.fetchval(session) == 1
        await session.close()
        await outer.rollback()
    assert await note_count(engine) == 0


async def test_a_session_that_ran_statements_is_freed_without_the_cycle_collector(engine: AsyncEngine) -> None:
    """What the session keeps for its statements must not tie it into a reference cycle: every request's
    session would then wait for the garbage collector (measured: 44 objects per login)."""
    gc.collect()
    gc.disable()
    try:
        async with make_sessionmaker(engine)() as session:
            await COUNT_NOTES.fetchval(session)
            await session.commit()
            await COUNT_NOTES.fetchval(session)
            freed = weakref.ref(session.sync_session)
        del session
        assert freed() is None
    finally:
        gc.enable()


class _Base(DeclarativeBase):
    metadata = make_metadata("risk")


class Note(_Base):
    __tablename__ = "statement_note"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    body: Mapped[str | None] = mapped_column(String)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


NOTE_BY_BODY = Statement(select(Note).where(Note.body == bindparam("body")).with_for_update())


async def test_an_attached_row_is_the_sessions_object_and_its_changes_are_flushed(engine: AsyncEngine) -> None:
    written = note("draft")
    async with make_sessionmaker(engine)() as session:
        await INSERT_NOTE.execute(session, written)
        await session.commit()
    async with make_sessionmaker(engine)() as session:
        row = await NOTE_BY_BODY.fetchrow(session, {"body": "draft"})
        assert row is not None
        attached = attach(session, Note, row)
        assert (attached.id, attached.meta, attached.at) == (written["id"], written["meta"], written["at"])
        assert not session.dirty  # as loaded: nothing to write
        assert await session.get(Note, written["id"]) is attached  # in the identity map, no second load
        attached.body = "final"
        await session.commit()
    async with make_sessionmaker(engine)() as session:
        assert await NOTE_BY_BODY.fetchrow(session, {"body": "draft"}) is None
        assert await NOTE_BY_BODY.fetchrow(session, {"body": "final"}) is not None
