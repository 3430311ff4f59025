"""Database access: one async engine per process, one schema per service.

The engine is built in the app's lifespan (never at import). The request owns
the transaction: :func:`get_db_session` commits when the endpoint returns and
rolls back when it raises; service and repository code only flushes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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
        pool_pre_ping=settings.db_pool_pre_ping,
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
    return Database(engine=engine, sessionmaker=make_sessionmaker(engine))


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


#: ``scope="function"``: commit (or roll back) as soon as the endpoint returns and
#: before the response is sent, so a failure at COMMIT (a deferred constraint, a
#: serialisation failure, a lost connection) is answered as an error, never
#: hidden behind a 200 that was already on the wire.
DBSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
