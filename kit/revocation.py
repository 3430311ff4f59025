"""A follower of identity's revocation feed, so revoked sessions stop working without a call per request.

Contract (docs/contracts.md): ``GET /v1/identity/internal/revocations?after=<cursor>``
with a service token returns ``{"revocations": [{"session_id", "revoked_at",
"expires_at"}], "cursor": "<opaque>"}``; ``after`` omitted means "from the oldest
revocation still relevant".

The follower polls every ``poll_seconds`` and keeps the revoked session ids
until their tokens could no longer be valid anyway (``expires_at``). Plug it
into the verifier: ``TokenVerifier(..., is_revoked=feed.is_revoked)``. A token
of a session revoked at ``t`` is refused from ``t + poll_seconds`` (plus one
feed round trip) at the latest.

If the feed cannot be read, what the follower knows gets older; ``fresh``
turns false after ``max_staleness_seconds`` and callers decide (the gateway
refuses session tokens then: a security decision fails closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kit.http import ServiceClient

logger = logging.getLogger("kit.revocation")

#: ``fetch(cursor)`` returns one page of the feed.
FeedFetcher = Callable[[str | None], Awaitable[Mapping[str, Any]]]

REVOCATIONS_PATH = "/v1/identity/internal/revocations"
#: Kept when identity gives no expiry: longer than any access token lives.
_DEFAULT_RETENTION_SECONDS = 86_400.0
#: Pages read in one sync at most, so one sync is bounded even on a huge backlog.
_MAX_PAGES_PER_SYNC = 50


def _epoch(value: Any, default: float) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return default
    return default


class RevocationFeed:
    def __init__(
        self,
        fetch: FeedFetcher,
        *,
        poll_seconds: float = 2.0,
        max_staleness_seconds: float = 30.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self._fetch = fetch
        self.poll_seconds = poll_seconds
        self.max_staleness_seconds = max_staleness_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._revoked: dict[str, float] = {}
        self._cursor: str | None = None
        self._last_success = float("-inf")
        self._failures = 0
        self._synced = asyncio.Event()

    @classmethod
    def from_service_client(cls, client: ServiceClient, **kwargs: Any) -> RevocationFeed:
        """A follower for a service: reads the feed through the gateway with its service token."""

        async def fetch(cursor: str | None) -> Mapping[str, Any]:
            params = {"after": cursor} if cursor else None
            response = await client.request("GET", REVOCATIONS_PATH, params=params)
            response.raise_for_status()
            data: Mapping[str, Any] = response.json()
            return data

        return cls(fetch, **kwargs)

    def is_revoked(self, session_id: str) -> bool:
        """The ``is_revoked`` hook of :class:`kit.auth.TokenVerifier` (a dict lookup)."""
        return session_id in self._revoked

    @property
    def fresh(self) -> bool:
        """Synced at least once, and recently enough for its bound to hold."""
        return self.age_seconds <= self.max_staleness_seconds

    @property
    def age_seconds(self) -> float:
        """Seconds since the last successful sync (infinite before the first)."""
        return time.monotonic() - self._last_success

    @property
    def revoked_count(self) -> int:
        return len(self._revoked)

    def add(self, session_id: str, expires_at: float) -> None:
        if expires_at > time.time():
            self._revoked[session_id] = max(expires_at, self._revoked.get(session_id, 0.0))

    async def sync_once(self) -> int:
        """Read every new page; returns how many revocations arrived."""
        arrived = 0
        for _ in range(_MAX_PAGES_PER_SYNC):
            page = await self._fetch(self._cursor)
            entries = page.get("revocations", [])
            if not isinstance(entries, list):
                raise ValueError("revocation feed answered without a list")
            now = time.time()
            for entry in entries:
                session_id = entry.get("session_id") if isinstance(entry, Mapping) else None
                if isinstance(session_id, str) and session_id:
                    self.add(session_id, _epoch(entry.get("expires_at"), now + _DEFAULT_RETENTION_SECONDS))
                    arrived += 1
            cursor = page.get("cursor")
            advanced = isinstance(cursor, str) and cursor != self._cursor
            if isinstance(cursor, str):
                self._cursor = cursor
            if not entries or not advanced:
                break
        self._prune()
        self._last_success = time.monotonic()
        self._failures = 0
        self._synced.set()
        return arrived

    @property
    def ever_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_first_sync(self, seconds: float) -> bool:
        """Wait (bounded) for the first successful read; True when it happened."""
        if not self._synced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), seconds)
        return self._synced.is_set()

    def _prune(self) -> None:
        now = time.time()
        for session_id in [s for s, expires in self._revoked.items() if expires <= now]:
            del self._revoked[session_id]

    async def run(self) -> None:
        """Follow the feed until cancelled; failures back off exponentially (logged, never raised)."""
        while True:
            delay = self.poll_seconds
            try:
                await self.sync_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                if self.ever_synced:
                    delay = min(self.poll_seconds * 2 ** min(self._failures - 1, 10), self.max_backoff_seconds)
                else:  # starting up next to identity: retry soon, the first read gates session tokens
                    delay = min(0.25 * 2 ** min(self._failures - 1, 10), self.poll_seconds)
                # The first miss is routine (identity restarting); keep on warning while stale.
                log = logger.warning if self._failures > 1 or not self.fresh else logger.info
                log("revocation feed unreadable (%s), retry in %.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RevocationFeed]:
        """``async with feed.running():`` follows the feed in a background task."""
        task = asyncio.create_task(self.run(), name="revocation-feed")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
