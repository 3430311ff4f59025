"""The app factory every service uses: same skeleton, same plumbing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData
from starlette.responses import Response

from kit.audit import AuditLog, export_checkpoint, mac_key_from_secret, signing_key_from_secret
from kit.audit_verification import audit_verification_router
from kit.auth import TokenVerifier, authenticate
from kit.db import create_database
from kit.errors import install_error_handlers
from kit.health import health_router
from kit.http import ServiceClient
from kit.inputs import refuse_control_characters
from kit.logging import configure_logging
from kit.middleware import MetricsMiddleware, RequestIdMiddleware
from kit.openapi import document_problems
from kit.outbox import Outbox, OutboxWorker, RetryPolicy
from kit.permissions import PermissionClient
from kit.revocation import RevocationFeed
from kit.service_auth import ClientCredentialsProvider
from kit.settings import ServiceSettings
from kit.telemetry import instrument_engine, instrument_httpx, server_telemetry, tracer_provider_for

logger = logging.getLogger("kit.app")

ExtraLifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass
class ServiceSpec:
    """What a service brings to the factory."""

    settings: ServiceSettings
    title: str
    description: str
    metadata: MetaData
    migrations_dir: Path
    #: Routers that require an authenticated caller (the default).
    routers: Sequence[APIRouter] = ()
    #: Routers that are deliberately public (documented as such).
    public_routers: Sequence[APIRouter] = ()
    audit_log: AuditLog | None = None
    outbox: Outbox | None = None
    extra_lifespan: ExtraLifespan | None = None
    version: str = "0.1.0"
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)


def create_app(spec: ServiceSpec) -> FastAPI:
    settings = spec.settings
    configure_logging(settings.service_name, level=settings.log_level, json=settings.log_json)
    if spec.audit_log is not None:
        # Every entry carries an HMAC under a key derived from the audit secret: the database never sees it.
        spec.audit_log.use_mac_key(
            mac_key_from_secret(settings.audit_signing_key.get_secret_value(), spec.audit_log.schema)
        )
    provider = tracer_provider_for(settings.service_name, settings.otlp_endpoint)
    instrument_httpx(provider)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = create_database(settings)
        instrument_engine(database.engine, provider)
        token_http = httpx.AsyncClient(base_url=settings.gateway_url, timeout=settings.http_timeout_seconds)
        client = ServiceClient(
            settings.gateway_url,
            timeout=settings.http_timeout_seconds,
            retries=settings.http_retries,
            token_provider=ClientCredentialsProvider(
                token_http, settings.client_id, settings.client_secret.get_secret_value()
            ),
        )
        app.state.settings = settings
        app.state.database = database
        app.state.service_client = client
        verifier = TokenVerifier.from_settings(settings, client)
        app.state.token_verifier = verifier
        app.state.permission_client = PermissionClient(client, cache_seconds=settings.permission_cache_seconds)
        app.state.audit_log = spec.audit_log
        tasks = _start_background_work(spec, app, client, verifier)
        # Build the OpenAPI document now, not on the first request for it: it is large (every route's
        # problems documented) and the gateway gives each service a few seconds to answer.
        app.openapi()
        try:
            if spec.extra_lifespan is not None:
                async with spec.extra_lifespan(app):
                    yield
            else:
                yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await client.aclose()
            await token_http.aclose()
            await database.dispose()

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags or None,
        telemetry=server_telemetry(provider),
    )
    install_error_handlers(app)
    app.include_router(health_router(settings.schema_name, spec.migrations_dir))
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    # One gate for every string the API accepts (NUL and other control characters: a 422 naming the
    # field), after authentication so an anonymous caller learns nothing but 401.
    refuse = Depends(refuse_control_characters)
    for router in spec.public_routers:
        app.include_router(router, dependencies=[refuse])
    for router in spec.routers:
        app.include_router(router, dependencies=[Depends(authenticate), refuse])
    if spec.audit_log is not None:
        # Every service proves its own chain on request (scope audit:verify).
        app.include_router(audit_verification_router(spec.audit_log), dependencies=[Depends(authenticate), refuse])
    app.add_middleware(MetricsMiddleware, service=settings.service_name)
    app.add_middleware(RequestIdMiddleware)
    _document_problems(app, spec.routers)
    return app


def _document_problems(app: FastAPI, authenticated_routers: Sequence[APIRouter]) -> None:
    """Generate the OpenAPI with every error response as problem+json (kit/openapi.py)."""
    authenticated = {
        (method, route.path)
        for router in authenticated_routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate(), authenticated)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _start_background_work(
    spec: ServiceSpec, app: FastAPI, client: ServiceClient, verifier: TokenVerifier
) -> list[asyncio.Task[None]]:
    """The outbox worker, the revocation follower and the audit checkpointer, as configured."""
    settings = spec.settings
    database = app.state.database
    tasks: list[asyncio.Task[None]] = []
    if spec.outbox is not None:
        worker = OutboxWorker(
            spec.outbox,
            database.sessionmaker,
            client,
            service=settings.service_name,
            policy=RetryPolicy(
                max_attempts=settings.outbox_max_attempts,
                base_seconds=settings.outbox_backoff_base_seconds,
                max_seconds=settings.outbox_backoff_max_seconds,
            ),
            poll_seconds=settings.outbox_poll_seconds,
        )
        app.state.outbox_worker = worker
        if settings.outbox_enabled:
            tasks.append(asyncio.create_task(worker.run(), name=f"{settings.service_name}-outbox"))
    if settings.follow_revocations:
        feed = RevocationFeed.from_service_client(client, poll_seconds=settings.revocation_poll_seconds)
        verifier.is_revoked = feed.is_revoked
        app.state.revocation_feed = feed
        tasks.append(asyncio.create_task(feed.run(), name=f"{settings.service_name}-revocations"))
    if spec.audit_log is not None:
        tasks.append(
            asyncio.create_task(_checkpoint_loop(spec.audit_log, app, settings), name=f"{settings.service_name}-audit")
        )
    return tasks


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _checkpoint_loop(audit_log: AuditLog, app: FastAPI, settings: ServiceSettings) -> None:
    """Sign the chain's tail every few entries (and at least once a minute)."""
    key = signing_key_from_secret(settings.audit_signing_key.get_secret_value())
    sink = Path(settings.audit_checkpoint_file) if settings.audit_checkpoint_file else None
    idle_rounds = 0
    while True:
        await asyncio.sleep(5)
        idle_rounds += 1
        try:
            async with app.state.database.sessionmaker() as session:
                pending = await audit_log.entries_since_checkpoint(session)
                if pending == 0 or (pending < settings.audit_checkpoint_every and idle_rounds < 12):
                    continue
                cp = await audit_log.checkpoint(session, key)
                await session.commit()
            idle_rounds = 0
            if cp is not None and sink is not None:
                export_checkpoint(cp, sink)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("audit checkpoint failed")
