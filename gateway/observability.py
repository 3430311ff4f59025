"""Gateway metrics (its own latency apart from the upstream's) and the JSON access log."""

from __future__ import annotations

import logging
import time

from opentelemetry import trace
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.security import mask_ip

access_logger = logging.getLogger("gateway.access")

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        first_byte = 0.0

        async def send_recording(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter()
                context = trace.get_current_span().get_span_context()
                if context.is_valid:
                    # The client learns the trace of its request (W3C format, the server span's id).
                    value = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
                    message.setdefault("headers", []).append((b"traceparent", value.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            ended = time.perf_counter()
            state = scope.get("state", {})
            upstream = state.get("gw_upstream")
            if upstream is not None:
                route = state.get("gw_route", "unmatched")
                upstream_seconds: float | None = state.get("gw_upstream_seconds")
                GATEWAY_REQUESTS.labels(upstream, route, scope["method"], str(status)).inc()
                GATEWAY_DURATION.labels(upstream, route).observe(ended - started)
                if upstream_seconds is not None:
                    UPSTREAM_DURATION.labels(upstream).observe(upstream_seconds)
                    GATEWAY_OVERHEAD.labels(upstream).observe(
                        max((first_byte or ended) - started - upstream_seconds, 0)
                    )
                if self.access_log:
                    self._log(scope, state, status, ended - started, upstream_seconds)

    @staticmethod
    def _log(scope: Scope, state: dict[str, object], status: int, seconds: float, upstream: float | None) -> None:
        client_ip = state.get("gw_client_ip")
        access_logger.info(
            "access",
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": state.get("gw_route"),
                "upstream": state.get("gw_upstream"),
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "upstream_ms": round(upstream * 1000, 3) if upstream is not None else None,
                "subject": state.get("gw_subject"),
                "kind": state.get("gw_kind"),
                "client_net": mask_ip(client_ip) if isinstance(client_ip, str) else None,
            },
        )
