"""Per-service roles: each reaches only its own schema and cannot rewrite its audit chain."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from ops.database import RoleSetupError, asyncpg_url, prepare
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


@contextlib.asynccontextmanager
async def throwaway_roles(url: str, prefix: str, services: tuple[str, ...], password: str) -> AsyncIterator[None]:
    """Roles created beforehand, as CloudNativePG's managed roles are; dropped afterwards."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            for service in services:
                await connection.execute(text(f"CREATE ROLE \"{prefix}{service}\" LOGIN PASSWORD '{password}'"))
        yield
    finally:
        async with admin.connect() as connection:
            for service in services:
                await connection.execute(text(f'DROP OWNED BY "{prefix}{service}"'))
                await connection.execute(text(f'DROP ROLE "{prefix}{service}"'))
        await admin.dispose()


async def test_managed_roles_are_only_granted_and_confined(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("managed")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    async with throwaway_roles(url, prefix, ("identity",), "s3cret-managed"):
        prepared = await prepare(url, services=("identity",), managed_roles=True, strict=True, role_prefix=prefix)
        login = make_url(prepared.service_urls["identity"]).set(password="s3cret-managed")
        admin = create_async_engine(url)
        async with admin.begin() as connection:  # a later release's migration, before the Job's grants
            await connection.execute(text("CREATE TABLE identity.added_later (id int)"))
        await admin.dispose()
        engine = create_async_engine(login)
        try:
            async with engine.begin() as connection:
                assert (await connection.execute(text("SELECT count(*) FROM identity.audit_entry"))).scalar_one() == 0
                await connection.execute(text("INSERT INTO identity.added_later VALUES (1)"))
            with pytest.raises(DBAPIError, match="permission denied"):
                async with engine.begin() as connection:
                    await connection.execute(text("UPDATE identity.audit_entry SET actor = 'b'"))
        finally:
            await engine.dispose()


async def test_a_missing_managed_role_is_fatal_outside_development(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("missing")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    with pytest.raises(RoleSetupError, match=f"{prefix}identity.*managed roles"):
        await prepare(url, services=("identity",), managed_roles=True, strict=True, role_prefix=prefix)
    lenient = await prepare(url, services=("identity",), managed_roles=True, strict=False, role_prefix=prefix)
    assert lenient.service_urls["identity"] == url  # development: a warning, the admin connection
