"""Calling upstreams: the aiohttp client, per-try timeouts, retries, circuit breaker.

One client, aiohttp, the library way. The gateway's own protocol-level client
(asyncio protocol + httptools) and an httpx option were measured against it
with ``python -m bench gateway`` and removed: neither gained the 1.5x on the
end-to-end figure that a bypass of the library must pay for (figures in
docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from gateway.resilience import CircuitBreaker, RetryBudget
from gateway.transport import (
    ConnectFailed,
    InvalidTarget,
    TimedOut,
    TransportFailed,
    UpstreamClient,
    UpstreamResponse,
    nothing_to_close,
)
from kit.errors import ServiceUnavailable

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Bodies up to this size are read whole (one send to the client); larger ones stream.
BUFFER_LIMIT = 256 * 1024

_tracer = trace.get_tracer("gateway.upstream")

__all__ = ["AiohttpUpstreamClient", "Upstream", "UpstreamClient", "UpstreamDown", "UpstreamTimeout"]


class UpstreamDown(ServiceUnavailable):
    code = "upstream_unavailable"
    title = "The service behind this route is unavailable"


class UpstreamTimeout(ServiceUnavailable):
    status = 504
    code = "upstream_timeout"
    title = "The service behind this route did not answer in time"


class AiohttpUpstreamClient:
    """aiohttp client; creates the CLIENT span and injects ``traceparent`` itself (cheaper than the instrumentor)."""

    def __init__(self, *, max_connections: int, connect_timeout: float) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        self._connect_timeout = connect_timeout

    async def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, time_limit: float
    ) -> UpstreamResponse:
        with _tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            # No query string in the span: it can carry codes.
            attributes={"http.request.method": method, "url.full": url.split("?", 1)[0]},
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            outgoing = [*headers, *carrier.items()]
            try:
                response = await self._session.request(
                    method,
                    url,
                    headers=outgoing,
                    data=body or None,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=time_limit, connect=min(time_limit, self._connect_timeout)),
                )
            except aiohttp.ClientConnectorError as exc:
                span.set_status(StatusCode.ERROR, "connect failed")
                raise ConnectFailed(str(type(exc).__name__)) from exc
            except TimeoutError as exc:
                span.set_status(StatusCode.ERROR, "timeout")
                raise TimedOut from exc
            except aiohttp.ClientError as exc:
                span.set_status(StatusCode.ERROR, "transport error")
                raise TransportFailed(type(exc).__name__) from exc
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(StatusCode.ERROR)
            headers_out = list(response.raw_headers)
            length = response.content_length
            if method == "HEAD" or (length is not None and length <= BUFFER_LIMIT):
                try:
                    data = await response.read()
                except TimeoutError as exc:
                    raise TimedOut from exc
                except aiohttp.ClientError as exc:
                    raise TransportFailed(type(exc).__name__) from exc
                finally:
                    response.release()
                return UpstreamResponse(response.status, headers_out, data, None, nothing_to_close)

            async def close() -> None:
                response.release()

            return UpstreamResponse(response.status, headers_out, None, response.content.iter_chunked(65_536), close)

    async def aclose(self) -> None:
        await self._session.close()


@dataclass
class Upstream:
    """One service behind the gateway, with its own breaker and retry budget."""

    name: str
    base_url: str
    client: UpstreamClient
    breaker: CircuitBreaker
    budget: RetryBudget
    timeout: float
    try_timeout: float
    retries: int

    async def call(self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes) -> UpstreamResponse:
        """Send ``method target`` (path and query); retries idempotent methods within deadline and budget."""
        if not target.startswith("/"):
            # Only a gateway bug gets here; it must never reach the network (a target glued to
            # the host would name another machine) nor count against this upstream's circuit.
            raise InvalidTarget(f"upstream target must be a path, got {target[:40]!r}")
        deadline = time.monotonic() + self.timeout
        may_retry = method in IDEMPOTENT_METHODS
        self.budget.deposit()
        url = self.base_url + target
        attempt = 0
        while True:
            probe = self.breaker.before()
            remaining = deadline - time.monotonic()
            failure: ServiceUnavailable
            try:
                if remaining <= 0:
                    raise TimedOut
                response = await self.client.send(method, url, headers, body, min(self.try_timeout, remaining))
            except TimedOut:
                failure = UpstreamTimeout(f"{self.name} did not answer in time")
            except (ConnectFailed, TransportFailed):
                failure = UpstreamDown(f"{self.name} is unavailable")
            except BaseException:
                self.breaker.after(probe, ok=True)  # cancelled by the client: says nothing about the upstream
                raise
            else:
                self.breaker.after(probe, ok=True)
                return response
            self.breaker.after(probe, ok=False)
            remaining = deadline - time.monotonic()
            if not may_retry or attempt >= self.retries or remaining <= 0 or not self.budget.try_spend():
                raise failure
            attempt += 1
            # Short jittered pause: enough to skip a connection reset, never past the deadline.
            await asyncio.sleep(min(0.02 * 2**attempt * (0.5 + random.random()), max(remaining, 0)))  # noqa: S311
