"""Kit tests run the kit's tables in a schema of their own (``kit_test``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
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
