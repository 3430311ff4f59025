"""The audit chain from the attacker's side: edits, deletions, reorders, truncation, forgery, races."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import String, bindparam, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kit.audit import (
    APPENDED,
    GENESIS_HASH,
    AuditChainMismatch,
    Checkpoint,
    Problem,
    compute_hash,
    export_checkpoint,
    load_checkpoints,
    signing_key_from_secret,
)
from kit.statements import Statement
from tests.kit.conftest import SCHEMA, audit_log

KEY = signing_key_from_secret("test-audit-key-0123456789abcdef0123456789")
PUBLIC = KEY.public_key()


async def write_entries(engine: AsyncEngine, count: int, *, checkpoint_at: set[int] | None = None) -> None:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    for index in range(1, count + 1):
        async with sessions() as session, session.begin():
            await audit_log.append(
                session,
                actor=f"staff-{index % 3}",
                action="account.freeze",
                target=f"acct-{index}",
                detail={"reason_code": "fraud", "n": index, "ratio": 0.1 * index, "nested": {"b": [1, 2], "a": None}},
            )
        if checkpoint_at and index in checkpoint_at:
            async with sessions() as session, session.begin():
                await audit_log.checkpoint(session, KEY)


async def verify(engine: AsyncEngine, **kwargs: object):  # type: ignore[no-untyped-def]
    async with AsyncSession(engine) as session:
        return await audit_log.verify(session, PUBLIC, **kwargs)  # type: ignore[arg-type]


async def as_attacker(engine: AsyncEngine, *statements: str) -> None:
    """A database superuser who bypasses the append-only triggers."""
    async with engine.begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await connection.execute(text(statement))


async def test_an_untouched_chain_verifies(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 12, checkpoint_at={5, 12})
    report = await verify(kit_engine)
    assert report.ok
    assert report.entries_checked == 12
    assert report.checkpoints_checked == 2


async def test_an_edited_entry_is_reported(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 10)
    await as_attacker(kit_engine, f"UPDATE {SCHEMA}.audit_entry SET actor = 'someone-else' WHERE seq = 4")
    report = await verify(kit_engine)
    assert not report.ok
    assert (report.first_bad_seq, report.problem) == (4, Problem.altered_entry)


async def test_an_edit_with_recomputed_hashes_is_caught_by_the_checkpoint(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 8, checkpoint_at={8})
    # The attacker rewrites entry 3 and re-chains everything after it.
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)
    from kit.audit import AuditRecord

    async with sessions() as session, session.begin():
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        rows = (await session.execute(audit_log.entries.select().order_by(audit_log.entries.c.seq))).all()
        prev = rows[1].entry_hash
        for row in rows[2:]:
            record = AuditRecord.from_row(row)
            if record.seq == 3:
                record.actor = "forged"
            record.prev_hash = prev
            record.entry_hash = compute_hash(prev, record.hashed_fields())
            prev = record.entry_hash
            await session.execute(
                update(audit_log.entries)
                .where(audit_log.entries.c.seq == record.seq)
                .values(actor=record.actor, prev_hash=record.prev_hash, entry_hash=record.entry_hash)
            )
    report = await verify(kit_engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 8, Problem.checkpoint_mismatch)


async def test_a_deleted_entry_is_reported(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 10)
    await as_attacker(kit_engine, f"DELETE FROM {SCHEMA}.audit_entry WHERE seq = 6")
    report = await verify(kit_engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 6, Problem.missing_entry)


async def test_a_reordered_pair_is_reported(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 10)
    # Swap the sequence numbers of entries 3 and 4 (the rows change places in the chain).
    await as_attacker(
        kit_engine,
        f"UPDATE {SCHEMA}.audit_entry SET seq = -3 WHERE seq = 3",
        f"UPDATE {SCHEMA}.audit_entry SET seq = 3 WHERE seq = 4",
        f"UPDATE {SCHEMA}.audit_entry SET seq = 4 WHERE seq = -3",
    )
    report = await verify(kit_engine)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert report.problem in (Problem.broken_link, Problem.altered_entry)


async def test_a_truncated_tail_is_reported_against_a_checkpoint(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 10, checkpoint_at={10})
    await as_attacker(kit_engine, f"DELETE FROM {SCHEMA}.audit_entry WHERE seq > 7")
    report = await verify(kit_engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 8, Problem.truncated)


async def test_truncation_with_checkpoints_deleted_is_caught_by_the_exported_copy(
    kit_engine: AsyncEngine, tmp_path: Path
) -> None:
    await write_entries(kit_engine, 6)
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        cp = await audit_log.checkpoint(session, KEY)
    assert cp is not None
    sink = tmp_path / "checkpoints.jsonl"
    export_checkpoint(cp, sink)
    await as_attacker(
        kit_engine,
        f"DELETE FROM {SCHEMA}.audit_entry WHERE seq > 3",
        f"DELETE FROM {SCHEMA}.audit_checkpoint",
    )
    assert (await verify(kit_engine)).ok  # the database alone no longer shows it...
    report = await verify(kit_engine, extra_checkpoints=load_checkpoints(sink, SCHEMA))
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 4, Problem.truncated)


async def test_a_forged_checkpoint_is_reported(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 4, checkpoint_at={4})
    await as_attacker(kit_engine, f"UPDATE {SCHEMA}.audit_checkpoint SET signature = decode(repeat('00', 64), 'hex')")
    report = await verify(kit_engine)
    assert (report.ok, report.problem) == (False, Problem.forged_checkpoint)


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    other = signing_key_from_secret("another-key-entirely-0123456789abcdef")
    cp = Checkpoint.sign(SCHEMA, 3, b"\x01" * 32, other)
    assert not cp.is_signed_by(PUBLIC)
    assert Checkpoint.from_json(cp.to_json()) == cp


async def test_the_table_refuses_update_delete_and_truncate(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 2, checkpoint_at={2})
    for statement in (
        f"UPDATE {SCHEMA}.audit_entry SET actor = 'x'",
        f"DELETE FROM {SCHEMA}.audit_entry",
        f"TRUNCATE {SCHEMA}.audit_entry",
        f"DELETE FROM {SCHEMA}.audit_checkpoint",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with kit_engine.begin() as connection:
                await connection.execute(text(statement))
    assert (await verify(kit_engine)).ok


async def test_twenty_concurrent_writers_leave_one_unbroken_chain(kit_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)

    async def writer(number: int) -> None:
        for index in range(5):
            async with sessions() as session, session.begin():
                await audit_log.append(session, actor=f"writer-{number}", action="test.write", detail={"i": index})

    await asyncio.gather(*(writer(n) for n in range(20)))
    report = await verify(kit_engine)
    assert report.ok
    assert report.entries_checked == 100
    async with AsyncSession(kit_engine) as session:
        seqs = (await session.execute(text(f"SELECT seq FROM {SCHEMA}.audit_entry ORDER BY seq"))).scalars().all()
    assert seqs == list(range(1, 101))


#: A caller's statement that writes its own row and appends its audit entry in the same round trip.
NOTED_AND_AUDITED = Statement(
    text(
        f"WITH noted AS (INSERT INTO {SCHEMA}.audit_note (body) VALUES (:body) RETURNING body), "
        f"{audit_log.append_ctes()} "
        f"SELECT (SELECT body FROM noted) AS body, seq, prev_hash, entry_hash FROM {APPENDED}"
    ).bindparams(bindparam("body", type_=String), *audit_log.append_binds())
)


async def test_entries_appended_inside_callers_statements_join_the_one_chain(kit_engine: AsyncEngine) -> None:
    """Twenty writers, half appending through their own statement, half through append(), in parallel."""
    async with kit_engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE {SCHEMA}.audit_note (body text)"))
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)

    async def writer(number: int) -> None:
        for index in range(5):
            async with sessions() as session, session.begin():
                if number % 2:
                    await audit_log.append(session, actor=f"writer-{number}", action="test.write", detail={"i": index})
                    continue
                entry = audit_log.pending(actor=f"writer-{number}", action="test.noted", detail={"i": index})
                row = await NOTED_AND_AUDITED.fetchrow(session, {"body": f"{number}-{index}"} | entry.params)
                assert row is not None
                assert row["body"] == f"{number}-{index}"
                appended = entry.appended(row)
                assert appended.seq == row["seq"]
                assert appended.action == "test.noted"

    await asyncio.gather(*(writer(n) for n in range(20)))
    report = await verify(kit_engine)
    assert report.ok
    assert report.entries_checked == 100
    async with AsyncSession(kit_engine) as session:
        assert (await session.execute(text(f"SELECT count(*) FROM {SCHEMA}.audit_note"))).scalar_one() == 50


def test_an_entry_the_database_hashed_differently_is_refused() -> None:
    """The hash the database computed must be the verifier's (else the request fails, nothing is kept)."""
    entry = audit_log.pending(actor="a", action="x")
    with pytest.raises(AuditChainMismatch):
        entry.appended({"seq": 1, "prev_hash": GENESIS_HASH, "entry_hash": bytes(32)})


async def test_a_rolled_back_append_leaves_no_trace(kit_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)
    async with sessions() as session:
        await audit_log.append(session, actor="a", action="x")
        await session.rollback()
    await write_entries(kit_engine, 1)
    report = await verify(kit_engine)
    assert report.ok
    assert report.entries_checked == 1


async def test_the_head_row_cannot_be_deleted_or_truncated(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 2)
    for statement in (f"DELETE FROM {SCHEMA}.audit_head", f"TRUNCATE {SCHEMA}.audit_head"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with kit_engine.begin() as connection:
                await connection.execute(text(statement))
    await write_entries(kit_engine, 1)
    assert (await verify(kit_engine)).entries_checked == 3


async def test_a_forged_head_breaks_the_next_link_and_the_verifier_says_where(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 3)
    # The head is the one table the service may update: pointing it at a made-up
    # hash cannot hide anything, the next entry then links to a hash no entry has.
    await as_attacker(kit_engine, f"UPDATE {SCHEMA}.audit_head SET entry_hash = decode(repeat('ab', 32), 'hex')")
    await write_entries(kit_engine, 1)
    report = await verify(kit_engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 4, Problem.broken_link)


async def test_a_head_moved_back_cannot_overwrite_entries(kit_engine: AsyncEngine) -> None:
    await write_entries(kit_engine, 3)
    await as_attacker(kit_engine, f"UPDATE {SCHEMA}.audit_head SET seq = 1")
    with pytest.raises(DBAPIError, match="pk_audit_entry"):
        await write_entries(kit_engine, 1)
    assert (await verify(kit_engine)).ok


async def test_the_database_hash_is_the_verifiers_hash_for_awkward_details(kit_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(kit_engine, expire_on_commit=False)
    details: list[dict[str, object]] = [
        {},
        {"name": "张三", "emoji": "\U0001f600", "quote": '"', "backslash": "\\", "nl": "a\nb"},
        {"seq": 999, "nested": {"seq": "x", "z": [None, True, 1.5e300]}},
    ]
    for detail in details:
        async with sessions() as session, session.begin():
            record = await audit_log.append(session, actor="a\u00e9", action="x.y", target=None, detail=detail)
        assert record.entry_hash == compute_hash(record.prev_hash, record.hashed_fields())
    assert (await verify(kit_engine)).entries_checked == len(details)
