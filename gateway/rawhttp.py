"""A lean HTTP/1.1 upstream client: an asyncio protocol with httptools' parser and a keep-alive pool.

Only what a proxy to our own services needs: one request at a time per
connection, bodies already in memory, responses buffered up to
``max_response_bytes`` (larger answers are refused with 502 rather than held).
HEAD requests go to the fallback client (httptools cannot be told that a
response to HEAD has no body). Measured against aiohttp and httpx in
``bench/bench_gateway.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from gateway.upstream import (
    AiohttpUpstreamClient,
    ConnectFailed,
    ResponseTooLarge,
    TimedOut,
    TransportFailed,
    UpstreamResponse,
    _nothing,
)

_tracer = trace.get_tracer("gateway.upstream")
#: Idle connections older than this are not reused: uvicorn closes idle keep-alive connections
#: after 5 s, and a connection closed while we pick it would fail a request.
IDLE_SECONDS = 2.0
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class _Connection(asyncio.Protocol):
    def __init__(self, max_bytes: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.max_bytes = max_bytes
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.waiter: asyncio.Future[None] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.received = False
        self.keep_alive = False
        self.status = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportFailed(f"unparseable response: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # A body delimited by the end of the connection (no length, not chunked) is not
        # supported: uvicorn, which serves every service, always sends a length or chunks.
        self._fail(TransportFailed("connection closed by the upstream"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_bytes:
            self._fail(ResponseTooLarge("upstream response too large"))
            self.close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, time_limit: float) -> None:
        assert self.transport is not None
        self._reset()
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        # A timer handle rather than asyncio.wait_for: no extra task per request.
        timer = loop.call_later(time_limit, self._time_out)
        try:
            self.transport.write(request)
            await waiter
        finally:
            timer.cancel()

    def _time_out(self) -> None:
        self._fail(TimedOut())
        self.close()


class RawUpstreamClient:
    def __init__(self, *, max_connections: int, connect_timeout: float, max_response_bytes: int = 16 << 20) -> None:
        self._connect_timeout = connect_timeout
        self._max_bytes = max_response_bytes
        self._max_connections = max_connections
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._targets: dict[str, tuple[str, int, str]] = {}
        # HEAD (and nothing else) goes through aiohttp, which knows such a response has no body.
        self._fallback = AiohttpUpstreamClient(max_connections=max_connections, connect_timeout=connect_timeout)

    def _split(self, url: str) -> tuple[str, int, str, str]:
        scheme_host, _, rest = url.partition("//")[2].partition("/")
        cached = self._targets.get(scheme_host)
        if cached is None:
            parts = urlsplit(url)
            if parts.scheme != "http" or parts.hostname is None:
                raise ConnectFailed("only http:// upstreams are supported by the raw client")
            cached = (parts.hostname, parts.port or 80, scheme_host)
            self._targets[scheme_host] = cached
        host, port, authority = cached
        return host, port, authority, "/" + rest

    async def _acquire(self, host: str, port: int) -> tuple[_Connection, bool]:
        idle = self._idle.get((host, port))
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection, True
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self._max_bytes), host, port), self._connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        return protocol, False

    def _release(self, host: str, port: int, connection: _Connection) -> None:
        if connection.closed or not connection.keep_alive:
            connection.close()
            return
        idle = self._idle.setdefault((host, port), deque())
        if len(idle) >= self._max_connections:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def send(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes, time_limit: float
    ) -> UpstreamResponse:
        if method == "HEAD":
            return await self._fallback.send(method, url, headers, body, time_limit)
        host, port, authority, target = self._split(url)
        with _tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            # No query string in the span: it can carry codes.
            attributes={"http.request.method": method, "url.full": url.split("?", 1)[0]},
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            lines = [f"{method} {target} HTTP/1.1", f"host: {authority}"]
            lines += [f"{name}: {value}" for name, value in headers]
            lines += [f"{name}: {value}" for name, value in carrier.items()]
            if body or method in _METHODS_WITH_BODY:
                lines.append(f"content-length: {len(body)}")
            request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
            slots = self._slots.get((host, port))
            if slots is None:
                slots = asyncio.Semaphore(self._max_connections)
                self._slots[(host, port)] = slots
            # At most max_connections exchanges per upstream; waiting for a slot counts against the time limit.
            started = time.monotonic()
            if slots.locked():
                try:
                    await asyncio.wait_for(slots.acquire(), time_limit)
                except TimeoutError:
                    span.set_status(StatusCode.ERROR, "no free connection")
                    raise TimedOut from None
            else:
                await slots.acquire()  # a free slot: returns at once
            try:
                return await self._exchange(span, host, port, request, time_limit - (time.monotonic() - started))
            finally:
                slots.release()

    async def _exchange(
        self, span: trace.Span, host: str, port: int, request: bytes, time_limit: float
    ) -> UpstreamResponse:
        connection, reused = await self._acquire(host, port)
        try:
            await connection.exchange(request, time_limit)
        except ResponseTooLarge:
            connection.close()
            span.set_status(StatusCode.ERROR, "response too large")
            raise
        except TransportFailed as exc:
            connection.close()
            span.set_status(StatusCode.ERROR, "transport error")
            if reused and not connection.received:
                # The upstream closed a kept-alive connection as we picked it: nothing was answered.
                raise TransportFailed("stale keep-alive connection") from exc
            raise
        except TimedOut:
            span.set_status(StatusCode.ERROR, "timeout")
            raise
        except BaseException:
            connection.close()  # cancelled mid-exchange: the connection's state is unknown
            raise
        span.set_attribute("http.response.status_code", connection.status)
        if connection.status >= 500:
            span.set_status(StatusCode.ERROR)
        status, headers_out, data = connection.status, connection.headers, b"".join(connection.body)
        self._release(host, port, connection)
        return UpstreamResponse(status, headers_out, data, None, _nothing)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        await self._fallback.aclose()
