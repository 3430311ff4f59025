"""Database access: one async engine per process, one schema per service.

The engine is built in the app's lifespan (never at import). The request owns
the transaction: :func:`get_db_session` commits when the endpoint returns and
rolls back when it raises; service and repository code only flushes. The one
exception, a write that must survive the rollback, goes through :func:`own_transaction`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from kit.settings import ServiceSettings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata(schema: str) -> MetaData:
    """Metadata bound to one service schema, with the suite's naming convention.

    A service declares its base as ``class Base(DeclarativeBase): metadata = make_metadata("vault")``
    (a class statement, so mypy accepts it as a base class).
    """
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


@dataclass(frozen=True, slots=True)
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_database(settings: ServiceSettings, *, pool_size: int | None = None) -> Database:
    engine = create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle_seconds,
        connect_args={
            "server_settings": {
                "application_name": settings.service_name,
                # A safety net only: models name their schema explicitly.
                "search_path": settings.schema_name,
                "statement_timeout": str(settings.db_statement_timeout_ms),
            }
        },
    )
    event.listen(engine.sync_engine, "handle_error", _count_broken_connections_as_disconnects)
    if settings.db_pool_pre_ping:
        CheckoutChecks(engine.sync_engine, ping_after_idle_seconds=settings.db_pool_ping_idle_seconds)
    return Database(engine=engine, sessionmaker=make_sessionmaker(engine))


#: The driver error after which a connection cannot be used again: asyncpg's protocol was left
#: mid-operation, e.g. by the server's termination notice arriving with a statement.
_BROKEN_CONNECTION = asyncpg.exceptions.InternalClientError

#: Where :class:`CheckoutChecks` notes, on the pooled connection, when it was returned.
_IDLE_SINCE = "suite_idle_since"


class CheckoutChecks:
    """Checks a pooled connection before a request gets it, without a round trip when it was just in use.

    SQLAlchemy's ``pool_pre_ping`` costs three round trips on every checkout
    with asyncpg (BEGIN, an empty statement, ROLLBACK): a tenth of a password
    login's event-loop work. Instead:

    * a connection the server has closed (restart, failover, terminated
      backend) is replaced at checkout for free: asyncpg notices the closed
      socket as soon as the event loop reads it, so ``is_closed()`` answers
      without asking the server;
    * a connection that sat idle in the pool for ``ping_after_idle_seconds``
      or more (where idle firewalls and server timeouts strike) is pinged as
      before, and replaced if the ping fails.

    What is left is a connection the server dropped a moment before the
    checkout, before the event loop read the news: its statement fails, the
    connection is discarded and that request is answered 503 with
    ``Retry-After`` (:func:`_count_broken_connections_as_disconnects`), as
    the requests in flight at that moment are anyway.
    """

    def __init__(self, engine: Engine, *, ping_after_idle_seconds: float) -> None:
        self.engine = engine
        self.ping_after_idle_seconds = ping_after_idle_seconds
        event.listen(engine.pool, "checkin", self._checked_in)
        event.listen(engine.pool, "checkout", self._checked_out)

    def _checked_in(self, dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:
            entry.info[_IDLE_SINCE] = time.monotonic()

    def _checked_out(self, dbapi_connection: Any, entry: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        if _driver_closed(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")
        idle_since = entry.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < self.ping_after_idle_seconds:
            return  # new, or back from a request a moment ago
        try:
            self.engine.dialect.do_ping(dbapi_connection)
        except Exception as failure:
            raise DisconnectionError("a pooled connection did not answer its ping") from failure


def _count_broken_connections_as_disconnects(failure: ExceptionContext) -> None:
    """A statement whose connection broke under it is a disconnect: SQLAlchemy then discards the
    connection (and the request is a retryable 503, see ``kit.errors``), never reuses it, never a 500.
    SQLAlchemy already counts an error on a connection asyncpg knows is closed."""
    if not failure.is_disconnect and isinstance(failure.original_exception.__cause__, _BROKEN_CONNECTION):
        failure.is_disconnect = True


def _driver_closed(dbapi_connection: Any) -> bool:
    """Whether the driver (asyncpg) already knows its connection is closed; no round trip."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    return bool(is_closed()) if is_closed is not None else False


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def get_database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commit on success, roll back on any error."""
    database = get_database(request)
    async with database.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


@asynccontextmanager
async def own_transaction(request: Request, request_session: AsyncSession | None = None) -> AsyncIterator[AsyncSession]:
    """A transaction of its own, committed on leaving the block without an error.

    The one exception to "the request owns the transaction": a write that must
    survive the request's rollback, such as the audit entry of a refused attempt
    (the refusal is what an auditor looks for first, and the error that answers
    it rolls the request back). Given the request's session, that transaction is
    rolled back first, since it may hold a lock the write needs (the audit
    chain's head row).
    """
    if request_session is not None:
        await request_session.rollback()
    async with get_database(request).sessionmaker() as own:
        yield own
        await own.commit()


async def flush_pending(session: AsyncSession) -> None:
    """Flush the unit of work when it holds something: an empty flush still costs a greenlet hop."""
    if session.new or session.dirty or session.deleted:
        await session.flush()


#: ``scope="function"``: commit (or roll back) as soon as the endpoint returns and
#: before the response is sent, so a failure at COMMIT (a deferred constraint, a
#: serialisation failure, a lost connection) is answered as an error, never
#: hidden behind a 200 that was already on the wire.
DBSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
