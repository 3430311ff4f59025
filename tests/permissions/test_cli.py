"""Bootstrapping the first administrator without a second approver, exactly once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from kit.db import make_sessionmaker
from services.permissions.cli import BootstrapRefused, bootstrap_admin, main
from services.permissions.models import audit_log
from tests.support.database import TestDatabases


async def test_bootstrap_grants_admin_once_and_audits(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("perm_cli")
    engine = create_async_engine(url)
    sessions = make_sessionmaker(engine)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        async with sessions() as session:
            grant = await bootstrap_admin(session, first)
            await session.commit()
        assert grant.approved_by == "bootstrap"
        async with sessions() as session:
            with pytest.raises(BootstrapRefused, match="already in force"):
                await bootstrap_admin(session, second)
            await session.rollback()
        async with sessions() as session:
            with pytest.raises(BootstrapRefused, match="UUID"):
                await bootstrap_admin(session, "root")
            entries = (await session.execute(select(audit_log.entries))).all()
        assert [(e.action, e.target, e.actor_kind) for e in entries] == [("grant.bootstrap_admin", first, "system")]
    finally:
        await engine.dispose()


async def test_cli_refuses_a_second_admin(test_databases: TestDatabases, monkeypatch: pytest.MonkeyPatch) -> None:
    url = await test_databases.clone("perm_cli")
    monkeypatch.setenv("PERMISSIONS_DATABASE_URL", url)
    monkeypatch.setenv("PERMISSIONS_ENVIRONMENT", "test")
    # main() runs its own event loop, so it runs in a worker thread here.
    assert await asyncio.to_thread(main, ["bootstrap-admin", str(uuid.uuid4())]) == 0
    assert await asyncio.to_thread(main, ["bootstrap-admin", str(uuid.uuid4())]) == 1
