"""kit.revocation: following identity's revocation feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest

from kit.auth import RevokedSession
from kit.revocation import RevocationFeed
from tests.support.tokens import TestIssuer


class FakeFeed:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.calls: list[str | None] = []
        self.fail = False

    async def __call__(self, cursor: str | None) -> Mapping[str, Any]:
        self.calls.append(cursor)
        if self.fail:
            raise ConnectionError("identity down")
        start = int(cursor or 0)
        page = self.entries[start : start + 2]
        return {"revocations": page, "cursor": str(start + len(page))}


def entry(session_id: str, expires_in: float = 600) -> dict[str, Any]:
    return {"session_id": session_id, "revoked_at": time.time(), "expires_at": time.time() + expires_in}


async def test_sync_reads_every_page_and_resumes_from_the_cursor() -> None:
    fake = FakeFeed()
    fake.entries = [entry(f"s{i}") for i in range(5)]
    feed = RevocationFeed(fake)
    before_first_sync = feed.fresh
    assert not before_first_sync
    assert await feed.sync_once() == 5
    assert all(feed.is_revoked(f"s{i}") for i in range(5))
    assert feed.fresh
    fake.entries.append(entry("s5"))
    fake.calls.clear()
    assert await feed.sync_once() == 1
    assert fake.calls[0] == "5"
    assert feed.is_revoked("s5")
    assert not feed.is_revoked("s6")


async def test_expired_revocations_are_forgotten_and_iso_dates_are_read() -> None:
    fake = FakeFeed()
    fake.entries = [
        entry("old", expires_in=-1),
        {"session_id": "iso", "revoked_at": "2026-01-01T00:00:00Z", "expires_at": "2999-01-01T00:00:00+00:00"},
        {"session_id": "no-expiry"},
        {"bad": "entry"},
    ]
    feed = RevocationFeed(fake)
    await feed.sync_once()
    assert not feed.is_revoked("old")
    assert feed.is_revoked("iso")
    assert feed.is_revoked("no-expiry")
    assert feed.revoked_count == 2


async def test_a_feed_that_cannot_be_read_goes_stale() -> None:
    fake = FakeFeed()
    feed = RevocationFeed(fake, poll_seconds=0.01, max_staleness_seconds=0.05, max_backoff_seconds=0.02)
    await feed.sync_once()
    fake.fail = True
    async with feed.running():
        await asyncio.sleep(0.2)
        stale = not feed.fresh
        assert stale
        fake.fail = False
        for _ in range(100):
            if feed.fresh:
                break
            await asyncio.sleep(0.01)
        assert feed.fresh


async def test_plugged_into_the_token_verifier() -> None:
    issuer = TestIssuer()
    fake = FakeFeed()
    feed = RevocationFeed(fake)
    jwks = issuer.jwks()

    async def fetch() -> Mapping[str, Any]:
        return jwks

    from kit.auth import TokenVerifier

    verifier = TokenVerifier(fetch, issuer="bank-suite-identity", audience="bank-suite", is_revoked=feed.is_revoked)
    token = issuer.mint(kind="customer", session_id="sess-1")
    assert (await verifier.verify(token)).session_id == "sess-1"
    fake.entries.append(entry("sess-1"))
    await feed.sync_once()
    with pytest.raises(RevokedSession):
        await verifier.verify(token)


async def test_jwks_refetch_backs_off_while_identity_is_down() -> None:
    from kit.auth import InvalidToken, TokenVerifier

    calls = 0

    async def failing() -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    verifier = TokenVerifier(failing, issuer="i", audience="a", refetch_interval=0.01, max_refetch_interval=10.0)
    token = TestIssuer().mint()
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
        await asyncio.sleep(0.02)
    # The first refetch and at most one more: the spacing doubled past the test's pace.
    assert calls <= 3
