"""The gateway: the suite's only public entry. ``uvicorn --factory gateway.app:create``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from gateway.config import SERVICES, GatewaySettings
from gateway.observability import GatewayObservability, flush_access_log
from gateway.openapi import OpenApiAggregator, docs_page
from gateway.policy import PolicyTable, load_policy
from gateway.proxy import Pipeline, ProxyEndpoint
from gateway.ratelimit import RateLimiter
from gateway.resilience import CircuitBreaker, RetryBudget
from gateway.security import EdgeMiddleware, TrustedProxies
from gateway.transport import UpstreamClient
from gateway.upstream import AiohttpUpstreamClient, Upstream
from kit.auth import TokenVerifier
from kit.errors import install_error_handlers, problem_response
from kit.logging import configure_logging
from kit.middleware import MetricsMiddleware, RequestIdMiddleware
from kit.revocation import FeedFetcher, RevocationFeed
from kit.service_auth import ClientCredentialsProvider
from kit.telemetry import instrument_httpx, tracer_provider_for

logger = logging.getLogger("gateway.app")

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CLIENT_ID = "gateway"

REVOCATION_FEED_AGE = Gauge("gateway_revocation_feed_age_seconds", "Seconds since the revocation feed was read.")
REVOKED_SESSIONS = Gauge("gateway_revoked_sessions", "Revoked sessions the gateway currently refuses.")


def _feed_fetcher(control: httpx.AsyncClient, tokens: ClientCredentialsProvider, path: str) -> FeedFetcher:
    async def fetch(cursor: str | None) -> Mapping[str, Any]:
        token = await tokens()
        response = await control.get(
            path, params={"after": cursor} if cursor else None, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == 401:
            tokens.invalidate()  # expired or rotated client token: fetch a new one next round
        response.raise_for_status()
        data: Mapping[str, Any] = response.json()
        return data

    return fetch


async def _refresh_jwks(verifier: TokenVerifier, every: float) -> None:
    while True:
        try:
            await verifier.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # identity down: keep the keys we have, unknown kids still refetch
            logger.warning("JWKS refresh failed: %s", type(exc).__name__)
        await asyncio.sleep(every)


async def _housekeeping(feed: RevocationFeed) -> None:
    """Each second: export the feed's state, write out buffered access-log lines."""
    while True:
        REVOCATION_FEED_AGE.set(min(feed.age_seconds, 1e9))
        REVOKED_SESSIONS.set(feed.revoked_count)
        flush_access_log()
        await asyncio.sleep(1.0)


@dataclass
class _Resources:
    client: UpstreamClient
    control: httpx.AsyncClient
    limiter: RateLimiter
    verifier: TokenVerifier
    feed: RevocationFeed


def _wire(app: FastAPI, settings: GatewaySettings, policy: PolicyTable) -> _Resources:
    """Build the per-process state (clients, verifier, feed, limiter) and hang it on ``app.state``."""
    urls = settings.upstreams()
    client = AiohttpUpstreamClient(
        max_connections=settings.upstream_max_connections,
        connect_timeout=settings.upstream_connect_timeout_seconds,
    )
    upstreams = {
        name: Upstream(
            name=name,
            base_url=base,
            client=client,
            breaker=CircuitBreaker(
                name,
                threshold=settings.breaker_failure_threshold,
                open_seconds=settings.breaker_open_seconds,
                probes=settings.breaker_half_open_probes,
            ),
            budget=RetryBudget(settings.retry_budget_ratio, settings.retry_budget_min_per_second),
            timeout=settings.timeout_for(name),
            try_timeout=min(settings.upstream_try_timeout_seconds, settings.timeout_for(name)),
            retries=settings.upstream_retries,
        )
        for name, base in urls.items()
    }
    # Control-plane calls to identity (keys, client token, revocations) go straight to its
    # upstream: the gateway never calls itself.
    control = httpx.AsyncClient(base_url=urls["identity"], timeout=5.0, follow_redirects=False)
    tokens = ClientCredentialsProvider(
        control, CLIENT_ID, settings.client_secret.get_secret_value(), token_path=settings.token_upstream_path
    )
    feed = RevocationFeed(
        _feed_fetcher(control, tokens, settings.revocation_upstream_path),
        poll_seconds=settings.revocation_poll_seconds,
        max_staleness_seconds=settings.revocation_max_staleness_seconds,
        max_backoff_seconds=max(settings.revocation_poll_seconds, settings.revocation_max_staleness_seconds / 4),
    )

    async def fetch_jwks() -> Mapping[str, Any]:
        response = await control.get(settings.jwks_upstream_path)
        response.raise_for_status()
        data: Mapping[str, Any] = response.json()
        return data

    verifier = TokenVerifier(
        fetch_jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds,
        refetch_interval=settings.jwks_refetch_interval_seconds,
        max_refetch_interval=60.0,
        is_revoked=feed.is_revoked,
        verified_cache_size=settings.token_cache_size,
    )
    limiter = RateLimiter(settings)
    app.state.settings = settings
    app.state.upstreams = upstreams
    app.state.token_verifier = verifier
    app.state.revocation_feed = feed
    app.state.rate_limiter = limiter
    app.state.pipeline = Pipeline(
        policy=policy,
        upstreams=upstreams,
        verifier=verifier,
        feed=feed,
        limiter=limiter,
        proxies=TrustedProxies(settings.trusted_proxies),
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.openapi = OpenApiAggregator(upstreams, policy, cache_seconds=settings.openapi_cache_seconds)
    return _Resources(client=client, control=control, limiter=limiter, verifier=verifier, feed=feed)


def create(settings: GatewaySettings | None = None) -> FastAPI:
    """Build the gateway app (the policy table is loaded now: a broken one stops the start).

    Middleware, outermost first: request id, suite metrics, gateway metrics + server span +
    access log, edge limits + security headers, CORS (when configured), the proxy path for
    ``/v1/...``; FastAPI's router serves the gateway's own endpoints.
    """
    settings = settings or GatewaySettings()
    configure_logging(settings.service_name, level=settings.log_level, json=settings.log_json)
    instrument_httpx(tracer_provider_for(settings.service_name, settings.otlp_endpoint))
    policy = load_policy(settings.routes_dir, SERVICES)  # a broken table stops the start, never half-applies

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = _wire(app, settings, policy)
        verifier, feed = resources.verifier, resources.feed
        tasks = [
            asyncio.create_task(feed.run(), name="revocation-feed"),
            asyncio.create_task(_refresh_jwks(verifier, settings.jwks_refresh_seconds), name="jwks-refresh"),
            asyncio.create_task(_housekeeping(feed), name="housekeeping"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            flush_access_log()
            await resources.client.aclose()
            await resources.control.aclose()
            await resources.limiter.aclose()

    app = FastAPI(
        title="Bank security suite gateway",
        description="The only public entry: routes /v1/<service>/... to the suite's services.",
        version="0.2.0",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # GatewayObservability traces every request (one lean server span); FastAPI's native
        # telemetry would add a second server span, its own metrics and logs per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], summary="Liveness of the gateway process")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness of the gateway itself (not of the services)")
    async def readyz(request: Request) -> Any:
        # The gateway is ready once its policy table, clients and limiter are wired. A service
        # that is down or migrating answers 503 through the gateway; it never takes every
        # gateway pod out of the load balancer (docs/deploy.md, "Readiness").
        if getattr(request.app.state, "pipeline", None) is None:
            return problem_response(request, status=503, code="not_ready", title="Not ready")
        return JSONResponse({"status": "ready"})

    @app.get("/status", tags=["health"], summary="Readiness of every service behind the gateway (aggregate)")
    async def status(request: Request) -> Any:
        upstreams: dict[str, Upstream] = request.app.state.upstreams

        async def probe(upstream: Upstream) -> tuple[str, str]:
            try:
                answer = await upstream.client.send("GET", f"{upstream.base_url}/readyz", [], b"", 2.0)
                await answer.close()
            except Exception:  # any failure to get an answer means unreachable
                return upstream.name, "unreachable"
            return upstream.name, "ready" if answer.status == 200 else "not_ready"

        results = dict(await asyncio.gather(*(probe(u) for u in upstreams.values())))
        if all(state == "ready" for state in results.values()):
            return JSONResponse({"status": "ready", "services": results})
        return problem_response(request, status=503, code="not_ready", title="Not ready", services=results)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        """Every route clients can call through the gateway, one OpenAPI 3.1 document."""
        return JSONResponse(await request.app.state.openapi.document())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        """The API reference page: every route with who may call it."""
        return HTMLResponse(docs_page(await request.app.state.openapi.document()))

    # Each add_middleware wraps the previous ones: added innermost first. GatewayObservability
    # opens the server span of every request (cheaper than the ASGI instrumentor on the proxy
    # path); the upstream clients open the client spans.
    app.add_middleware(ProxyEndpoint)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=PROXY_METHODS,
            allow_headers=["authorization", "content-type", "idempotency-key", "x-request-id", "traceparent"],
            expose_headers=["x-request-id", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(
        EdgeMiddleware,
        max_header_bytes=settings.max_header_bytes,
        max_body_bytes=settings.max_body_bytes,
        hsts_max_age=settings.hsts_max_age_seconds,
    )
    app.add_middleware(GatewayObservability, access_log=settings.access_log)
    app.add_middleware(MetricsMiddleware, service=settings.service_name)
    app.add_middleware(RequestIdMiddleware)
    return app
