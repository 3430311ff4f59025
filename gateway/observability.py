"""Gateway metrics (its own latency apart from the upstream's) and the JSON access log."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.security import mask_ip
from kit.logging import redact_request_id, redact_text

_tracer = trace.get_tracer("gateway")
_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")
#: Probes and scrapes: no span, no access log (as kit.telemetry.UNTRACED_PATHS for the services).
UNTRACED_PATHS = frozenset({"/healthz", "/metrics"})

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GATEWAY_REQUESTS = Counter(
    "gateway_requests_total",
    "Requests through the gateway, by upstream, route prefix (policy table) and status.",
    ["upstream", "route", "method", "status"],
)
GATEWAY_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Whole request as the client sees it (gateway + upstream), by upstream and route prefix.",
    ["upstream", "route"],
    buckets=_BUCKETS,
)
UPSTREAM_DURATION = Histogram(
    "gateway_upstream_duration_seconds",
    "Time spent waiting for the upstream (all attempts), by upstream.",
    ["upstream"],
    buckets=_BUCKETS,
)
GATEWAY_OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "The gateway's own time for a request: until the response starts, minus the upstream's time.",
    ["upstream"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1),
)


class GatewayObservability:
    """Records metrics and writes one access-log line per proxied or refused request.

    The handler leaves what it learned in ``scope["state"]`` (``gw_upstream``,
    ``gw_route``, ``gw_upstream_seconds``, ``gw_subject``, ``gw_kind``,
    ``gw_client_ip``). No token, query string or header value is logged.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        first_byte = 0.0
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS}
        method = scope["method"]
        with _tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            # No url.path: a raw path can carry personal data; the route template and the policy
            # prefix (set at the end) say where the request went.
            attributes={"http.request.method": method, "url.scheme": scope["scheme"]},
        ) as span:
            context = span.get_span_context()
            traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}".encode()

            async def send_recording(message: Message) -> None:
                nonlocal status, first_byte
                if message["type"] == "http.response.start":
                    status = message["status"]
                    first_byte = time.perf_counter()
                    # The client learns the trace of its request (W3C format, the gateway's server span).
                    message.setdefault("headers", []).append((b"traceparent", traceparent))
                await send(message)

            try:
                await self.app(scope, receive, send_recording)
            finally:
                ended = time.perf_counter()
                template = getattr(scope.get("route"), "path", None)
                attributes: dict[str, str | int] = {"http.response.status_code": status}
                if template:
                    span.update_name(f"{method} {template}")
                    attributes["http.route"] = template
                policy_prefix = scope.get("state", {}).get("gw_route")
                if policy_prefix:
                    attributes["gateway.route"] = policy_prefix
                span.set_attributes(attributes)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
                self._record(scope, status, started, first_byte, ended)

    def _record(self, scope: Scope, status: int, started: float, first_byte: float, ended: float) -> None:
        state = scope.get("state", {})
        upstream = state.get("gw_upstream")
        if upstream is None:
            return
        route = state.get("gw_route", "unmatched")
        upstream_seconds: float | None = state.get("gw_upstream_seconds")
        key = (upstream, route, scope["method"], status)
        children = self._children.get(key)
        if children is None:
            # Label lookups cost more than the observations: resolve each combination once
            # (bounded: routes come from the policy table, statuses and methods are few).
            children = (
                GATEWAY_REQUESTS.labels(upstream, route, scope["method"], str(status)),
                GATEWAY_DURATION.labels(upstream, route),
                UPSTREAM_DURATION.labels(upstream),
                GATEWAY_OVERHEAD.labels(upstream),
            )
            if len(self._children) < 10_000:
                self._children[key] = children
        requests, duration, upstream_duration, overhead = children
        requests.inc()
        duration.observe(ended - started)
        if upstream_seconds is not None:
            upstream_duration.observe(upstream_seconds)
            own = (first_byte or ended) - started - upstream_seconds
            overhead.observe(max(own, 0.0))
        if self.access_log:
            self._log(scope, state, status, ended - started, upstream_seconds)

    @staticmethod
    def _log(scope: Scope, state: dict[str, object], status: int, seconds: float, upstream: float | None) -> None:
        client_ip = state.get("gw_client_ip")
        request_id = state.get("request_id")
        context = trace.get_current_span().get_span_context()
        ACCESS_LOG.write(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "INFO",
                "logger": "gateway.access",
                "service": "gateway",
                "message": "access",
                "method": scope["method"],
                # Paths carry ids; anything that looks like personal data is redacted like every log.
                "path": redact_text(scope["path"]),
                "route": state.get("gw_route"),
                "upstream": state.get("gw_upstream"),
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "upstream_ms": round(upstream * 1000, 3) if upstream is not None else None,
                "subject": state.get("gw_subject"),
                "kind": state.get("gw_kind"),
                "client_net": mask_ip(client_ip) if isinstance(client_ip, str) else None,
                # A client-chosen request id is redacted like a path; the suite's own stay whole.
                "request_id": redact_request_id(request_id) if isinstance(request_id, str) else None,
                "trace_id": f"{context.trace_id:032x}" if context.is_valid else None,
            }
        )


class AccessLog:
    """JSON access lines to stdout, in batches (one write per batch, not per request).

    Not through :mod:`logging`: a log record, its filters and formatter cost more than the
    request's own policy work. The fields are produced by the gateway (no header, body, token
    or query string), so the generic redaction of arbitrary records is not needed; the path
    is redacted. A batch is written when it holds ``max_lines`` or is ``interval`` seconds old
    (checked on every line and by the gateway's housekeeping task each second) and at shutdown.
    """

    def __init__(self, interval: float = 0.5, max_lines: int = 256) -> None:
        self.interval = interval
        self.max_lines = max_lines
        #: Callbacks that receive every entry (tests, or a shipper that wants dicts).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._lines: list[str] = []
        self._written = time.monotonic()

    def write(self, entry: dict[str, Any]) -> None:
        self._lines.append(json.dumps(entry, separators=(",", ":"), default=str))
        for listener in self.listeners:
            listener(entry)
        if len(self._lines) >= self.max_lines or time.monotonic() - self._written >= self.interval:
            self.flush()

    def flush(self) -> None:
        self._written = time.monotonic()
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):  # stdout closed: an access line must never fail a request
            return


ACCESS_LOG = AccessLog()


def flush_access_log() -> None:
    ACCESS_LOG.flush()
