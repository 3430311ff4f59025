"""Kit tests run the kit's tables in a schema of their own (``kit_test``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.audit import AuditLog, append_only_trigger_sql, audit_head_trigger_sql
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox
from tests.support.database import TestDatabases

SCHEMA = "kit_test"
metadata = make_metadata(SCHEMA)
audit_log = AuditLog(metadata)
outbox = Outbox(metadata)
inbox = Inbox(metadata)


async def create_kit_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
        await connection.run_sync(metadata.create_all)
        for statement in (*append_only_trigger_sql(SCHEMA), *audit_head_trigger_sql(SCHEMA)):
            await connection.execute(text(statement))


@pytest.fixture
async def kit_engine(test_databases: TestDatabases) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database holding the kit's tables (tests here commit)."""
    url = await test_databases.clone("kit")
    engine = create_async_engine(url, pool_size=25, max_overflow=5)
    await create_kit_schema(engine)
    yield engine
    await engine.dispose()


async def break_begin_of_the_pooled_connection(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the BEGIN of the service's pooled connection fail as asyncpg reports a protocol left mid-operation
    (InternalClientError, seen in practice as "cannot switch to state 15; another operation (2) is in
    progress" when the server's termination notice races a request's first statement). Other connections,
    such as the one the pool opens to replace it, begin normally. The pool must hold one connection."""
    async with app.state.database.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await connection.rollback()

    class BrokenTransaction:
        async def start(self) -> None:
            raise asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation is in progress")

    healthy = asyncpg.Connection.transaction

    def transaction(self: asyncpg.Connection, **options: Any) -> Any:
        return BrokenTransaction() if self is driver else healthy(self, **options)

    monkeypatch.setattr(asyncpg.Connection, "transaction", transaction)
