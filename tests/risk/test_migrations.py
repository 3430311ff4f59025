"""The hand-written migrations of the risk schema create exactly what the models describe."""

from __future__ import annotations

from services.risk.models import SCHEMA, Base
from tests.support.migrations import schema_drift


async def test_models_and_migrations_agree(database_url: str) -> None:
    assert await schema_drift(database_url, Base.metadata, SCHEMA) == []
