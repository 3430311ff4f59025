"""What the gateway's upstream calls exchange: the answer, the client protocol and the transport failures.

Kept apart from :mod:`gateway.upstream` (the aiohttp client, retries and the
circuit breaker) so that tests and the benchmark can supply their own client
against these types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

RawHeaders = list[tuple[bytes, bytes]]


class ConnectFailed(Exception):
    """Nothing reached the upstream."""


class TimedOut(Exception):
    """The attempt ran past its per-try timeout (or the request's deadline)."""


class TransportFailed(Exception):
    """The exchange broke after the request may have reached the upstream."""


class InvalidTarget(ValueError):
    """The gateway built a target that is not a path: its own bug, never the upstream's failure."""


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: RawHeaders
    #: The whole body when it was small enough to buffer, else None and ``stream`` is set.
    body: bytes | None
    stream: AsyncIterator[bytes] | None
    close: Callable[[], Awaitable[None]]


class UpstreamClient(Protocol):
    async def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, time_limit: float
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


async def nothing_to_close() -> None:
    return None
