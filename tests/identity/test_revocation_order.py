"""Issue 13 item 8: the revocation feed's cursor follows commit order.

Two revocations commit out of order (the one that started first commits last). With a cursor taken from
a time stamped before the commit, the follower reads the later one, moves its cursor past the earlier
one's time, and never sees the earlier one: the thief's token keeps working. The feed must deliver both.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.identity.support import bearer, service_token, signed_in

_REVOKE = text(
    "UPDATE identity.session SET revoked_at = clock_timestamp(), revoke_reason = 'test' "
    "WHERE id = :id AND revoked_at IS NULL"
)


async def _feed(client: httpx.AsyncClient, token: str, cursor: str | None) -> tuple[set[str], str]:
    """Every page after ``cursor``, as a follower reads it: (session ids, the cursor to keep)."""
    seen: set[str] = set()
    for _ in range(50):
        params = {"after": cursor} if cursor else None
        page: dict[str, Any] = (await client.get("/internal/revocations", params=params, headers=bearer(token))).json()
        seen.update(r["session_id"] for r in page["revocations"])
        if not page["revocations"] or page["cursor"] == cursor:
            return seen, page["cursor"]
        cursor = page["cursor"]
    raise AssertionError("the feed did not end")


async def _waiting_on_a_lock(session: AsyncSession, pid: int) -> bool:
    state = await session.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
    await session.rollback()  # the activity view is a snapshot per transaction: look again with a fresh one
    return bool(state == "Lock")


async def test_a_revocation_that_commits_late_is_still_delivered(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    token = await service_token(client, client_id="gateway")
    _, start = await _feed(client, token, None)
    _, _, first = await signed_in(client)
    _, _, second = await signed_in(client)
    sessionmaker = identity_app.state.database.sessionmaker
    late_may_commit = asyncio.Event()

    async with sessionmaker() as early, sessionmaker() as late, sessionmaker() as observer:
        # The first revocation is stamped first and stays uncommitted.
        await early.execute(_REVOKE, {"id": uuid.UUID(first["session_id"])})
        late_pid = int(await late.scalar(text("SELECT pg_backend_pid()")) or 0)

        async def revoke_late() -> None:
            await late.execute(_REVOKE, {"id": uuid.UUID(second["session_id"])})
            await late_may_commit.wait()
            await late.commit()

        late_task = asyncio.create_task(revoke_late())
        late_may_commit.set()
        # Either the second revocation commits at once (its time is later than the first's), or the feed
        # makes it wait for the first one to commit: let whichever happens, happen.
        while not late_task.done() and not await _waiting_on_a_lock(observer, late_pid):
            await asyncio.wait({late_task}, timeout=0.01)
        between, cursor = await _feed(client, token, start or None)
        await early.commit()
        await late_task

    after, _ = await _feed(client, token, cursor or None)
    delivered = between | after
    assert {first["session_id"], second["session_id"]} <= delivered


async def test_revocations_are_numbered_in_commit_order(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    """Every path that revokes (logout, the holder's revoke-all) gets a number from the trigger."""
    account_id, _, tokens = await signed_in(client)
    await client.post("/me/logout", headers=bearer(tokens["access_token"]))
    async with identity_app.state.database.sessionmaker() as session:
        number = await session.scalar(
            text("SELECT revoked_seq FROM identity.session WHERE id = :id"), {"id": uuid.UUID(tokens["session_id"])}
        )
        counter = await session.scalar(text("SELECT value FROM identity.revocation_counter"))
    assert number is not None
    assert counter is not None
    assert number <= counter
    assert account_id


async def test_an_old_time_ordered_cursor_restarts_the_feed(client: httpx.AsyncClient) -> None:
    import base64
    from datetime import UTC, datetime

    token = await service_token(client, client_id="gateway")
    _, _, tokens = await signed_in(client)
    await client.post("/me/logout", headers=bearer(tokens["access_token"]))
    legacy = base64.urlsafe_b64encode(f"{datetime.now(UTC).isoformat()}|{uuid.uuid4()}".encode()).decode()
    page = await client.get("/internal/revocations", params={"after": legacy.rstrip("=")}, headers=bearer(token))
    assert page.status_code == 200
    assert tokens["session_id"] in [r["session_id"] for r in page.json()["revocations"]]
