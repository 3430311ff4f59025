"""The proxy pipeline for ``/v1/<service>/<path>``.

In order: path hygiene, route policy (unknown routes are 404 and never
forwarded), per-IP and route-class rate limit, token verification and the
route's audience and assurance level, per-subject rate limit, bounded body,
then the upstream call (per-try timeout, retries for idempotent methods within
a budget, circuit breaker). The verified identity travels as the original
bearer token, which the service verifies again; identity-looking headers a
client sent are stripped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.policy import HTTP_METHODS, Audience, PolicyTable, RoutePolicy
from gateway.ratelimit import Decision, RateLimiter
from gateway.security import InvalidPath, PayloadTooLarge, TrustedProxies, check_path, is_identity_header
from gateway.transport import UpstreamResponse
from gateway.upstream import Upstream
from kit.auth import InsufficientAssurance, Principal, TokenVerifier, acr_at_least, bearer_token
from kit.context import REQUEST_ID_HEADER
from kit.errors import (
    Forbidden,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    SuiteError,
    TooManyRequests,
    problem_response,
)
from kit.revocation import RevocationFeed

logger = logging.getLogger("gateway.proxy")

#: RFC 9110 hop-by-hop headers (and those the gateway sets itself), never forwarded as received.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {
    REQUEST_ID_HEADER.encode(),
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"x-real-ip",
    b"forwarded",
    b"traceparent",
    b"tracestate",
    b"expect",  # the body is already read: no 100-continue dance with the upstream
}
#: How long a session token waits for the gateway's first revocation-feed read after start-up.
FIRST_SYNC_WAIT_SECONDS = 3.0
#: ``date`` and ``server`` come from the gateway's own server: the upstream's would make two of each.
_NOT_RETURNED = HOP_BY_HOP | {REQUEST_ID_HEADER.encode(), b"traceparent", b"date", b"server"}


class UnknownService(NotFound):
    code = "unknown_route"
    title = "No such route"


class UnknownRoute(NotFound):
    """Same answer as a service's own 404, so probing the policy table learns nothing."""

    code = "not_found"
    title = "Not found"


class MethodNotAllowed(SuiteError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class AudienceNotAllowed(Forbidden):
    code = "route_not_allowed"
    title = "This route is not for this kind of caller"


class RateLimited(TooManyRequests):
    """429 with ``Retry-After`` and the ``RateLimit-*`` headers of the exhausted limit."""


class RevocationStateUnknown(ServiceUnavailable):
    code = "revocation_state_unknown"
    title = "Sessions cannot be checked right now"


class Pipeline:
    def __init__(
        self,
        *,
        policy: PolicyTable,
        upstreams: Mapping[str, Upstream],
        verifier: TokenVerifier,
        feed: RevocationFeed,
        limiter: RateLimiter,
        proxies: TrustedProxies,
        max_body_bytes: int,
    ) -> None:
        self.tokens = verifier
        self.policy = policy
        self.upstreams = upstreams
        self.verifier = verifier
        self.feed = feed
        self.limiter = limiter
        self.proxies = proxies
        self.max_body_bytes = max_body_bytes

    async def handle(self, request: Request, service: str) -> Response:
        scope = request.scope
        state = scope["state"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        upstream, route = self._route(scope, service, raw_path)
        # The upstream target is the decoded route's remainder after ``/v1/<service>``: _route
        # made sure the raw prefix is literally that (no percent-encoding in it).
        target = "/" + raw_path.split(b"/", 3)[3].decode("latin-1") if raw_path.count(b"/") >= 3 else "/"
        peer = scope["client"][0] if scope.get("client") else "unknown"
        client_ip = self.proxies.client_ip(peer, request.headers.get("x-forwarded-for"))
        state["gw_client_ip"] = client_ip

        # The address is limited before the token is verified, so a flood of forged tokens is cheap to refuse.
        decision = await self.limiter.check_client(client_ip, route.rate_class)
        if not decision.allowed:
            raise RateLimited("too many requests from this address", headers=dict(decision.headers()))
        principal = await self._authorize(request, route)
        if principal is not None:
            state["gw_subject"] = principal.subject
            state["gw_kind"] = principal.kind.value
            by_subject = await self.limiter.check_subject(principal.subject, route.rate_class)
            if not by_subject.allowed:
                raise RateLimited("too many requests for this subject", headers=dict(by_subject.headers()))
            if by_subject.remaining < decision.remaining:
                decision = by_subject

        body = await self._read_body(request)
        headers = self._upstream_headers(request, client_ip)
        query: bytes = scope.get("query_string", b"")
        if query:
            target += "?" + query.decode("latin-1")
        started = time.perf_counter()
        try:
            answer = await upstream.call(scope["method"], target, headers, body)
        finally:
            state["gw_upstream_seconds"] = time.perf_counter() - started
        return self._respond(scope["method"], answer, decision)

    def _route(self, scope: Scope, service: str, raw_path: bytes) -> tuple[Upstream, RoutePolicy]:
        """The upstream and the policy of this path; unknown services and routes are never forwarded.

        The ``/v1/<service>/`` prefix must be spelled literally: any percent-encoding in it
        (``/v1/identit%79/...``, ``/%761/...``) is refused, so the prefix the policy matched
        on the decoded path is byte for byte the one the upstream target is cut from.
        """
        if raw_path.split(b"/", 3)[:3] != [b"", b"v1", service.encode()]:
            raise InvalidPath("percent-encoding is not accepted in /v1/<service>/")
        upstream = self.upstreams.get(service)
        if upstream is None:
            raise UnknownService(f"no service named {service!r}")
        scope["state"]["gw_upstream"] = service
        path: str = scope["path"]
        check_path(raw_path, path)
        route = self.policy.match(service, path)
        if route is None:
            raise UnknownRoute("no such route")
        scope["state"]["gw_route"] = route.prefix
        method: str = scope["method"]
        allowed = route.methods if route.methods is not None else HTTP_METHODS
        if method not in allowed:
            raise MethodNotAllowed(f"{method} is not allowed here", headers={"Allow": ", ".join(sorted(allowed))})
        return upstream, route

    @staticmethod
    def _respond(method: str, answer: UpstreamResponse, decision: Decision) -> Response:
        raw_headers = [(k, v) for k, v in answer.headers if k.lower() not in _NOT_RETURNED]
        raw_headers += [(k.encode(), v.encode()) for k, v in decision.headers()]
        upstream_length = next((v for k, v in answer.headers if k.lower() == b"content-length"), None)
        response: Response
        if answer.body is not None and method != "HEAD":
            response = Response(status_code=answer.status)
            response.body = answer.body
            raw_headers.append((b"content-length", str(len(answer.body)).encode()))
        else:
            if answer.stream is None:
                response = Response(status_code=answer.status)  # HEAD: no body, the upstream's length
            else:
                response = StreamingResponse(
                    answer.stream, status_code=answer.status, background=BackgroundTask(answer.close)
                )
            if upstream_length is not None:
                raw_headers.append((b"content-length", upstream_length))
        response.raw_headers = raw_headers
        return response

    async def _authorize(self, request: Request, route: RoutePolicy) -> Principal | None:
        if route.audience is Audience.public:
            return None
        token = bearer_token(request)
        if token is None:
            raise NotAuthenticated("a bearer access token is required")
        principal = await self.tokens.verify(token)
        if principal.session_id is not None and not self.feed.fresh and not await self._first_sync():
            # Fail closed: without a recent view of revocations a session token cannot be trusted.
            raise RevocationStateUnknown("session revocations could not be read recently", headers={"Retry-After": "2"})
        if not route.audience.admits(principal):
            raise AudienceNotAllowed(f"this route is for {route.audience.value} callers")
        if route.min_acr is not None and not acr_at_least(principal.acr, route.min_acr):
            raise InsufficientAssurance(f"this route needs assurance {route.min_acr}", required_acr=route.min_acr)
        return principal

    async def _first_sync(self) -> bool:
        """At start-up only, wait briefly for the first feed read rather than refuse at once."""
        if self.feed.ever_synced:
            return False
        return await self.feed.wait_first_sync(FIRST_SYNC_WAIT_SECONDS)

    async def _read_body(self, request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge(f"at most {self.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _upstream_headers(request: Request, client_ip: str) -> list[tuple[str, str]]:
        scope = request.scope
        listed = {
            token.strip().lower().encode()
            for name, value in scope["headers"]
            if name == b"connection"
            for token in value.decode("latin-1").split(",")
        }
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name not in _NOT_FORWARDED and name not in listed and not is_identity_header(name)
        ]
        headers.append(("x-forwarded-for", client_ip))
        headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
        host = request.headers.get("host")
        if host:
            headers.append(("x-forwarded-host", host))
        headers.append((REQUEST_ID_HEADER, scope["state"]["request_id"]))
        return headers


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    """What ``scope["route"]`` carries for metrics and span names (the proxied path itself never is a label)."""

    path: str


PROXY_ROUTE = RouteTemplate("/v1/{service}/{path:path}")


class ProxyEndpoint:
    """Pure-ASGI handling of ``/v1/...``, ahead of FastAPI's router.

    The proxy path skips FastAPI's routing, dependency solving and exception
    middleware (a third of the gateway's CPU per request in the benchmark);
    errors are rendered as the same RFC 9457 problems the kit renders.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        scope["route"] = PROXY_ROUTE
        request = Request(scope, receive)
        pipeline: Pipeline = scope["app"].state.pipeline
        response: Response
        try:
            response = await pipeline.handle(request, scope["path"].split("/", 3)[2])
        except SuiteError as exc:
            if exc.status >= 500:
                logger.warning("request failed: %s", exc.code)
            response = problem_response(
                request,
                status=exc.status,
                code=exc.code,
                title=exc.title,
                detail=exc.detail,
                headers=exc.headers,
                **exc.extensions,
            )
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = problem_response(
                request,
                status=500,
                code="internal_error",
                title="Internal error",
                detail="The request could not be completed. Quote the request id when reporting it.",
            )
        await response(scope, receive, send)
