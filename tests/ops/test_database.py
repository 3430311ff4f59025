"""Per-service roles: each reaches only its own schema and cannot rewrite its audit chain."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from ops.database import asyncpg_url, prepare
from tests.support.database import TestDatabases


def test_libpq_urls_become_asyncpg_urls() -> None:
    assert asyncpg_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    assert asyncpg_url("postgresql+asyncpg://u@h/d") == "postgresql+asyncpg://u@h/d"


async def test_service_roles_are_confined_to_their_schema(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("roles")
    prepared = await prepare(url, roles=True, services=("identity", "vault"))
    identity_url = prepared.service_urls["identity"]
    if identity_url == url:
        pytest.skip("this server does not allow creating login roles")
    engine = create_async_engine(identity_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO identity.audit_entry (seq, id, occurred_at, actor, actor_kind, action, outcome,"
                    " detail, prev_hash, entry_hash) VALUES (1, gen_random_uuid(), now(), 'a', 'staff', 'x',"
                    " 'success', '{}', '\\x00', '\\x00')"
                )
            )
            assert (await connection.execute(text("SELECT count(*) FROM identity.audit_entry"))).scalar_one() == 1
        for forbidden in (
            "SELECT count(*) FROM vault.audit_entry",
            "UPDATE identity.audit_entry SET actor = 'b'",
            "DELETE FROM identity.audit_checkpoint",
            "DELETE FROM identity.audit_head",  # the chain's tail may move on, never disappear
            "TRUNCATE identity.audit_head",
            "SET session_replication_role = replica",  # cannot switch the append-only triggers off
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.begin() as connection:
                    await connection.execute(text(forbidden))
    finally:
        await engine.dispose()
