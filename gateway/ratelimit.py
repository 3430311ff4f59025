"""Rate limits with the ``limits`` library: per client IP, per subject, per route class.

Fixed windows that start at the first hit (``limits``' fixed-window strategy:
one atomic ``INCR`` per limit, so several gateway processes sharing a Redis
count together); limits are parsed and keyed by ``limits``. Storage is in
memory by default (per process, :class:`LocalCounters`) or Redis through
``limits``' storage when ``GATEWAY_RATE_LIMIT_STORAGE=async+redis://host:port/db``.

When the shared storage fails (Redis down or slower than its 250 ms socket
timeout), the gateway keeps limiting with per-process memory counters and
retries Redis every ``rate_limit_storage_retry_seconds``: limits stay on, but
each replica counts alone, so the effective limit is at most N times the
configured one with N replicas. It never fails open, and never turns a Redis
outage into a gateway outage.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.errors import StorageError
from limits.storage import storage_from_string
from prometheus_client import Counter, Gauge

from gateway.config import GatewaySettings

logger = logging.getLogger("gateway.ratelimit")

RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused by a rate limit.", ["limit"])
SHARED_STORAGE_UP = Gauge(
    "gateway_rate_limit_shared_storage_up", "1 while the shared rate-limit storage answers (1 for memory)."
)


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    item: RateLimitItem

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: The most constraining limit (the refused one when ``allowed`` is false).
    limit: Limit
    remaining: int
    retry_after: int = 0

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit-*`` headers (draft-ietf-httpapi-ratelimit-headers) plus ``Retry-After`` on refusal."""
        quota = self.limit.item.amount
        headers = [
            ("ratelimit-policy", f'"{self.limit.name}";q={quota};w={self.limit.window_seconds}'),
            ("ratelimit-limit", str(quota)),
            ("ratelimit-remaining", str(self.remaining)),
        ]
        if not self.allowed:
            headers.append(("ratelimit-reset", str(self.retry_after)))
            headers.append(("retry-after", str(self.retry_after)))
        return headers


class CounterStorage(Protocol):
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    async def get_expiry(self, key: str) -> float: ...


class LocalCounters:
    """Fixed-window counters in process memory, O(1) per increment.

    ``limits``' async memory storage schedules a sweep of every key on every
    increment (O(clients) per request); here expired windows are swept once a
    second instead. Same semantics: a window starts at its first hit.
    """

    def __init__(self) -> None:
        self._windows: dict[str, list[float]] = {}
        self._next_sweep = 0.0

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        window = self._windows.get(key)
        if window is None or window[1] <= now:
            window = [0.0, now + expiry]
            self._windows[key] = window
        window[0] += amount
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            for stale in [k for k, (_, ends) in self._windows.items() if ends <= now]:
                del self._windows[stale]
        return int(window[0])

    async def get_expiry(self, key: str) -> float:
        window = self._windows.get(key)
        return window[1] if window is not None else time.time()


@functools.lru_cache(maxsize=65_536)
def address_key(address: str) -> str:
    """The rate-limit key of a client address: an IPv4 address itself, an IPv6 address's /64.

    One IPv6 subscriber usually holds a whole /64 (RFC 6177), so keying by full
    address would give an attacker 2**64 fresh budgets. IPv4-mapped IPv6
    addresses count as the IPv4 address they carry.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    def __init__(self, settings: GatewaySettings) -> None:
        self.prefix = settings.rate_limit_key_prefix
        self.ip = Limit("ip", parse(settings.rate_limit_ip))
        self.subject = Limit("subject", parse(settings.rate_limit_subject))
        self.classes = {name: Limit(name, parse(value)) for name, value in settings.rate_limit_classes.items()}
        self.fallback = LocalCounters()
        uri = settings.rate_limit_storage
        self.shared: CounterStorage | None = None
        if not uri.startswith(("memory://", "async+memory://")):
            storage = storage_from_string(
                uri if uri.startswith("async+") else f"async+{uri}",
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=0.25,
                socket_connect_timeout=0.25,
            )
            assert isinstance(storage, Storage)
            self.shared = cast(CounterStorage, storage)
        self.retry_seconds = settings.rate_limit_storage_retry_seconds
        self._shared_down_until = 0.0
        SHARED_STORAGE_UP.set(1)

    def _storage(self) -> CounterStorage:
        if self.shared is not None and time.monotonic() >= self._shared_down_until:
            return self.shared
        return self.fallback

    async def _count(self, storage: CounterStorage, checks: Sequence[tuple[Limit, str]]) -> list[int]:
        keys = [limit.item.key_for(self.prefix, limit.name, who) for limit, who in checks]
        if len(keys) == 1:
            return [await storage.incr(keys[0], checks[0][0].item.get_expiry())]
        return list(
            await asyncio.gather(
                *(storage.incr(key, limit.item.get_expiry()) for key, (limit, _) in zip(keys, checks, strict=True))
            )
        )

    async def check_client(self, client_ip: str, rate_class: str) -> Decision:
        """Before authentication: the client address (IPv6 by /64), and the route class per address."""
        who = address_key(client_ip)
        checks: list[tuple[Limit, str]] = [(self.ip, who)]
        route_class = self.classes.get(rate_class)
        if route_class is not None:
            checks.append((route_class, who))
        return await self._check(checks)

    async def check_subject(self, subject: str, rate_class: str) -> Decision:
        """After authentication: the subject, and the route class per subject."""
        checks: list[tuple[Limit, str]] = [(self.subject, subject)]
        route_class = self.classes.get(rate_class)
        if route_class is not None:
            checks.append((route_class, f"sub:{subject}"))
        return await self._check(checks)

    async def _check(self, checks: Sequence[tuple[Limit, str]]) -> Decision:
        """Count this request against every limit given; refuse it if any is exhausted."""
        storage = self._storage()
        try:
            counts = await self._count(storage, checks)
        except (StorageError, OSError, TimeoutError) as exc:
            if storage is self.fallback:
                raise
            self._shared_down_until = time.monotonic() + self.retry_seconds
            SHARED_STORAGE_UP.set(0)
            logger.warning("shared rate-limit storage unavailable (%s): counting per process", type(exc).__name__)
            storage = self.fallback
            counts = await self._count(storage, checks)
        else:
            if storage is self.shared:
                SHARED_STORAGE_UP.set(1)
        tightest: tuple[Limit, str, int] | None = None
        refused: tuple[Limit, str] | None = None
        for (limit, who), count in zip(checks, counts, strict=True):
            remaining = max(limit.item.amount - count, 0)
            if count > limit.item.amount and refused is None:
                refused = (limit, who)
            if tightest is None or remaining < tightest[2]:
                tightest = (limit, who, remaining)
        assert tightest is not None
        if refused is None:
            return Decision(True, tightest[0], tightest[2])
        limit, who = refused
        RATE_LIMITED.labels(limit.name).inc()
        try:
            reset_at = await storage.get_expiry(limit.item.key_for(self.prefix, limit.name, who))
        except (StorageError, OSError, TimeoutError):
            reset_at = time.time() + limit.window_seconds
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return Decision(False, limit, 0, retry_after)

    async def aclose(self) -> None:
        if self.shared is not None:
            bridge = getattr(self.shared, "bridge", None)
            storage = getattr(bridge, "storage", None)
            close = getattr(storage, "aclose", None)
            if close is not None:
                await close()
