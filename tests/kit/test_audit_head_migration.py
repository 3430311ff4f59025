"""Upgrading a service whose chain predates the head row: the chain goes on where it was."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kit.audit import GENESIS_HASH, AuditRecord, Checkpoint, compute_hash
from kit.migrations import upgrade
from ops.database import create_database, migrations_dir, with_database
from services.risk.models import audit_log
from tests.kit.test_audit import KEY, PUBLIC
from tests.support.database import TestDatabases, unique_name


async def test_the_head_is_seeded_from_the_last_entry_of_an_existing_chain(test_databases: TestDatabases) -> None:
    name = unique_name("audit_head")
    await create_database(test_databases.server_url, name)
    test_databases.created.append(name)
    url = with_database(test_databases.server_url, name)
    await asyncio.to_thread(upgrade, migrations_dir("risk"), url, "risk", "0001")

    engine = create_async_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        # Three entries written the way appends were written before the head existed.
        prev = GENESIS_HASH
        async with sessions() as session, session.begin():
            for seq in (1, 2, 3):
                record = AuditRecord(
                    seq=seq,
                    id=uuid.uuid4(),
                    occurred_at=datetime.now(UTC),
                    actor="analyst-1",
                    actor_kind="staff",
                    action="case.opened",
                    target=f"case-{seq}",
                    outcome="success",
                    detail={"n": seq},
                    request_id=None,
                    trace_id=None,
                    prev_hash=prev,
                    entry_hash=b"",
                )
                record.entry_hash = prev = compute_hash(prev, record.hashed_fields())
                await session.execute(insert(audit_log.entries).values(**record.row()))
            signed = Checkpoint.sign("risk", 3, prev, KEY)
            await session.execute(
                insert(audit_log.checkpoints).values(
                    seq=3, entry_hash=prev, signature=signed.signature, key_id=signed.key_id
                )
            )

        await asyncio.to_thread(upgrade, migrations_dir("risk"), url, "risk")

        async with sessions() as session, session.begin():
            appended = await audit_log.append(session, actor="analyst-2", action="case.closed", target="case-1")
        assert (appended.seq, appended.prev_hash) == (4, prev)
        async with AsyncSession(engine) as session:
            report = await audit_log.verify(session, PUBLIC)
        assert (report.ok, report.entries_checked, report.checkpoints_checked) == (True, 4, 1)
    finally:
        await engine.dispose()
