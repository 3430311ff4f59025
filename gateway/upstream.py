"""Calling upstreams: interchangeable HTTP clients, per-try timeouts, retries, circuit breaker.

``bench/bench_gateway.py`` measures the candidates in every run and the
setting ``GATEWAY_UPSTREAM_CLIENT`` picks one: the gateway's own
protocol-level client (``raw``, :mod:`gateway.rawhttp`, the default: least CPU
per request), ``aiohttp`` (streams answers of any size) or ``httpx`` 0.28
(3-8x the CPU of aiohttp: its connection pool is the bottleneck,
encode/httpx#3215).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from gateway.resilience import CircuitBreaker, RetryBudget
from kit.errors import ServiceUnavailable, SuiteError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Bodies up to this size are read whole (one send to the client); larger ones stream.
BUFFER_LIMIT = 256 * 1024

_tracer = trace.get_tracer("gateway.upstream")

RawHeaders = list[tuple[bytes, bytes]]


class UpstreamDown(ServiceUnavailable):
    code = "upstream_unavailable"
    title = "The service behind this route is unavailable"


class UpstreamTimeout(ServiceUnavailable):
    status = 504
    code = "upstream_timeout"
    title = "The service behind this route did not answer in time"


class UpstreamResponseTooLarge(SuiteError):
    status = 502
    code = "upstream_response_too_large"
    title = "The service's answer is larger than the gateway relays"


class InvalidTarget(ValueError):
    """The gateway built a target that is not a path: its own bug, never the upstream's failure."""


class ResponseTooLarge(Exception):
    """The upstream's answer exceeded the client's buffer limit (a property of the answer, not an outage)."""


class ConnectFailed(Exception):
    """Nothing reached the upstream."""


class TimedOut(Exception):
    """The attempt ran past its per-try timeout (or the request's deadline)."""


class TransportFailed(Exception):
    """The exchange broke after the request may have reached the upstream."""


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


async def _nothing() -> None:
    return None


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
                return UpstreamResponse(response.status, headers_out, data, None, _nothing)

            async def close() -> None:
                response.release()

            return UpstreamResponse(response.status, headers_out, None, response.content.iter_chunked(65_536), close)

    async def aclose(self) -> None:
        await self._session.close()


class HttpxUpstreamClient:
    """httpx client (the foundation's); its CLIENT spans come from the process-wide instrumentor."""

    def __init__(self, *, max_connections: int, connect_timeout: float) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )
        self._connect_timeout = connect_timeout

    async def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, time_limit: float
    ) -> UpstreamResponse:
        request = self._client.build_request(
            method,
            url,
            headers=list(headers),
            content=body or None,
            timeout=httpx.Timeout(time_limit, connect=min(time_limit, self._connect_timeout)),
        )
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        except httpx.TimeoutException as exc:
            raise TimedOut from exc
        except httpx.TransportError as exc:
            raise TransportFailed(type(exc).__name__) from exc
        headers_out = list(response.headers.raw)
        length = response.headers.get("content-length")
        if method == "HEAD" or (length is not None and length.isdigit() and int(length) <= BUFFER_LIMIT):
            try:
                data = await response.aread()
            except httpx.TimeoutException as exc:
                raise TimedOut from exc
            except httpx.TransportError as exc:
                raise TransportFailed(type(exc).__name__) from exc
            finally:
                await response.aclose()
            return UpstreamResponse(response.status_code, headers_out, data, None, _nothing)
        return UpstreamResponse(response.status_code, headers_out, None, response.aiter_raw(), response.aclose)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_client(
    kind: str, *, max_connections: int, connect_timeout: float, max_response_bytes: int = 16 << 20
) -> UpstreamClient:
    if kind == "raw":
        from gateway.rawhttp import RawUpstreamClient

        return RawUpstreamClient(
            max_connections=max_connections, connect_timeout=connect_timeout, max_response_bytes=max_response_bytes
        )
    if kind == "httpx":
        return HttpxUpstreamClient(max_connections=max_connections, connect_timeout=connect_timeout)
    return AiohttpUpstreamClient(max_connections=max_connections, connect_timeout=connect_timeout)


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
            except ResponseTooLarge as exc:
                self.breaker.after(probe, ok=True)
                raise UpstreamResponseTooLarge(f"{self.name} answered more than the gateway relays") from exc
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
