"""The gateway: the suite's only public entry. ``uvicorn --factory gateway.app:create``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response, StreamingResponse

from gateway.config import GatewaySettings
from gateway.proxy import forward
from kit.errors import install_error_handlers, problem_response
from kit.logging import configure_logging
from kit.middleware import MetricsMiddleware, RequestIdMiddleware
from kit.telemetry import instrument_app, instrument_httpx, tracer_provider_for

PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings.service_name, level=settings.log_level, json=settings.log_json)
    provider = tracer_provider_for(settings.service_name, settings.otlp_endpoint)
    instrument_httpx(provider)
    upstreams = settings.upstreams()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds),
            limits=httpx.Limits(
                max_connections=settings.upstream_max_connections,
                max_keepalive_connections=settings.upstream_max_connections,
            ),
            follow_redirects=False,
        )
        app.state.upstream_client = client
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(
        title="Bank security suite gateway",
        description="The only public entry: routes /v1/<service>/... to the suite's services.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.get("/healthz", tags=["health"], summary="Liveness of the gateway process")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness of every service behind the gateway")
    async def readyz(request: Request) -> Any:
        client: httpx.AsyncClient = request.app.state.upstream_client

        async def probe(name: str, base: str) -> tuple[str, str]:
            try:
                response = await client.get(f"{base}/readyz", timeout=2.0)
            except httpx.HTTPError:
                return name, "unreachable"
            return name, "ready" if response.status_code == 200 else "not_ready"

        results = dict(await asyncio.gather(*(probe(n, b) for n, b in upstreams.items())))
        if all(state == "ready" for state in results.values()):
            return JSONResponse({"status": "ready", "services": results})
        return problem_response(request, status=503, code="not_ready", title="Not ready", services=results)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.api_route("/v1/{service}/{path:path}", methods=PROXY_METHODS, include_in_schema=False)
    async def proxy(service: str, path: str, request: Request) -> StreamingResponse:
        return await forward(request.app.state.upstream_client, upstreams, service, path, request)

    instrument_app(app, provider)
    app.add_middleware(MetricsMiddleware, service=settings.service_name)
    app.add_middleware(RequestIdMiddleware)
    return app
