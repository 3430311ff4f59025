"""Fixtures shared by the whole suite's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from ops.database import create_database, prepare, with_database
from tests.support.database import TestDatabases, admin_server_url, unique_name

SPAN_EXPORTER = InMemorySpanExporter()


def pytest_configure(config: pytest.Config) -> None:
    # One in-memory exporter for the whole process: the apps' tracer setup
    # reuses an installed provider, so every span of every app lands here.
    provider = TracerProvider(resource=Resource.create({"service.name": "tests"}))
    provider.add_span_processor(SimpleSpanProcessor(SPAN_EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    return SPAN_EXPORTER


@pytest.fixture(scope="session")
async def test_databases() -> AsyncIterator[TestDatabases]:
    server_url = admin_server_url()
    template = unique_name("suite_tpl")
    await create_database(server_url, template)
    await prepare(with_database(server_url, template), roles=False)
    databases = TestDatabases(server_url, template)
    try:
        yield databases
    finally:
        await databases.drop_all()


@pytest.fixture(scope="session")
async def database_url(test_databases: TestDatabases) -> str:
    """A migrated database shared by the tests of this process (rolled-back use only)."""
    return await test_databases.clone()


@pytest.fixture
async def fresh_database_url(test_databases: TestDatabases) -> str:
    """A migrated database of this test's own, for tests that must commit."""
    return await test_databases.clone("suite_fresh")


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits only release savepoints; everything is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def clear_spans() -> InMemorySpanExporter:
    SPAN_EXPORTER.clear()
    return SPAN_EXPORTER
