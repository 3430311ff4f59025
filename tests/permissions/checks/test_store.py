"""Two processes' indexes stay in step through the change counter; grant use is written back."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from kit.db import make_sessionmaker
from services.permissions.checks.store import ChangeKind, PolicyStore, record_change
from services.permissions.grants.service import role_by_name
from services.permissions.models import Grant
from tests.support.database import TestDatabases


async def test_a_change_in_one_process_reaches_another(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("perm_store")
    engine = create_async_engine(url)
    sessions = make_sessionmaker(engine)
    writer = PolicyStore(sessions, refresh_seconds=60)
    reader = PolicyStore(sessions, refresh_seconds=0)  # polls before every check
    subject = str(uuid.uuid4())
    try:
        assert not (await reader.check(subject, "funds:read")).allowed
        assert not (await writer.check(subject, "funds:read")).allowed
        async with sessions() as session:
            role = await role_by_name(session, "teller")
            session.add(Grant(subject=subject, role_id=role.id, requested_by="t", approved_by="t"))
            await record_change(session, ChangeKind.subject, subject, writer)
            await session.commit()
        # The writer process learns of its own commit at once, whatever its refresh period.
        assert (await writer.check(subject, "funds:read")).allowed
        # Another process sees it on its next poll.
        assert (await reader.check(subject, "funds:read")).allowed
        assert await reader.flush_usage() == 1
        async with sessions() as session:
            used = (await session.execute(select(Grant.last_used_at).where(Grant.subject == subject))).scalar_one()
        assert used is not None
        async with sessions() as session:
            await record_change(session, ChangeKind.model)
            await session.commit()
        assert (await reader.check(subject, "funds:read")).allowed  # full reload keeps the grant
    finally:
        await engine.dispose()
