"""Keyed audit entries from the attacker's side (issue 13, item 13): a database role without the service's key
appends entries that chain correctly, and the verifier still refuses them; WORM checkpoints are held too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kit.audit import MAC_FIELD, Problem, export_checkpoint, load_checkpoints, mac_key_from_secret
from tests.kit.conftest import SCHEMA, audit_log
from tests.kit.test_audit import KEY, PUBLIC, as_attacker

MAC_KEY = mac_key_from_secret("test-audit-key-0123456789abcdef0123456789", SCHEMA)


@pytest.fixture
def keyed() -> Iterator[None]:
    audit_log.use_mac_key(MAC_KEY)
    try:
        yield
    finally:
        audit_log.use_mac_key(None)


async def append(engine: AsyncEngine, n: int, *, key: bytes | None) -> None:
    """Append ``n`` entries with ``key`` (None: as the database role alone could, without the key)."""
    previous = audit_log.mac_key
    audit_log.use_mac_key(key)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        for index in range(n):
            async with sessions() as session, session.begin():
                await audit_log.append(session, actor="staff-1", action="vault.decrypt", detail={"n": index})
    finally:
        audit_log.use_mac_key(previous)


async def verify(engine: AsyncEngine, **kwargs: object):  # type: ignore[no-untyped-def]
    async with AsyncSession(engine) as session:
        return await audit_log.verify(session, PUBLIC, mac_key=MAC_KEY, **kwargs)  # type: ignore[arg-type]


async def test_keyed_entries_verify_and_readers_see_no_mac(kit_engine: AsyncEngine, keyed: None) -> None:
    await append(kit_engine, 3, key=MAC_KEY)
    report = await verify(kit_engine)
    assert report.ok
    assert report.entries_checked == 3
    async with AsyncSession(kit_engine) as session:
        stored = (await session.execute(text(f"SELECT detail FROM {SCHEMA}.audit_entry ORDER BY seq"))).scalars()
        assert all(MAC_FIELD in d for d in stored)


async def test_an_entry_appended_without_the_key_is_refused(kit_engine: AsyncEngine) -> None:
    await append(kit_engine, 2, key=MAC_KEY)
    await append(kit_engine, 1, key=None)  # the database role's forgery: chains, but carries no MAC
    report = await verify(kit_engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 3, Problem.unkeyed_entry)


async def test_an_entry_with_a_made_up_mac_is_refused(kit_engine: AsyncEngine) -> None:
    await append(kit_engine, 2, key=MAC_KEY)
    await append(kit_engine, 1, key=mac_key_from_secret("the attacker's guess", SCHEMA))
    report = await verify(kit_engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 3, Problem.forged_entry)


async def test_older_unkeyed_entries_still_verify(kit_engine: AsyncEngine) -> None:
    await append(kit_engine, 2, key=None)  # written before the chain was keyed
    await append(kit_engine, 2, key=MAC_KEY)
    report = await verify(kit_engine)
    assert report.ok
    assert report.entries_checked == 4


async def test_the_verifier_holds_the_chain_against_the_worm_checkpoints(
    kit_engine: AsyncEngine, tmp_path: Path
) -> None:
    await append(kit_engine, 3, key=MAC_KEY)
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        checkpoint = await audit_log.checkpoint(session, KEY)
    assert checkpoint is not None
    worm = tmp_path / "checkpoints.worm"
    export_checkpoint(checkpoint, worm)
    # The attacker removes the last entry and the stored checkpoint that covers it: what remains in the
    # database verifies on its own, but not against the WORM copy the service cannot rewrite.
    await as_attacker(
        kit_engine,
        f"DELETE FROM {SCHEMA}.audit_checkpoint",
        f"DELETE FROM {SCHEMA}.audit_entry WHERE seq = 3",
        f"UPDATE {SCHEMA}.audit_head SET seq = 2, entry_hash = prev_hash",
    )
    assert (await verify(kit_engine)).ok
    report = await verify(kit_engine, extra_checkpoints=load_checkpoints(worm, SCHEMA))
    assert (report.ok, report.problem) == (False, Problem.truncated)
