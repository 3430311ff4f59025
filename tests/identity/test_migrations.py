"""The hand-written migrations of the identity schema create exactly what the models describe."""

from __future__ import annotations

from services.identity.models import SCHEMA, Base
from tests.support.migrations import schema_drift


async def test_models_and_migrations_agree(identity_db: str) -> None:
    assert await schema_drift(identity_db, Base.metadata, SCHEMA) == []
