"""Migration 0100 creates exactly the registry tables the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.risk.models import SCHEMA, Base


async def test_registry_models_and_migration_agree(database_url: str) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _parent: type_ != "schema" or name == SCHEMA,
                "compare_type": True,
                "version_table_schema": SCHEMA,
            },
        )
        changes: list[Any] = compare_metadata(context, Base.metadata)
        return changes

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == []
