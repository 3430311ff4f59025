"""The identity service: `uvicorn --factory services.identity.app:create`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from kit.auth import TokenVerifier
from services.identity.accounts import endpoints as accounts
from services.identity.api_clients import endpoints as api_clients
from services.identity.config import IdentitySettings
from services.identity.login import endpoints as login
from services.identity.login.retention import login_log_archive, purge_loop
from services.identity.mfa import endpoints as mfa
from services.identity.models import Base, audit_log, outbox
from services.identity.notifications.service import NotificationWorker
from services.identity.runtime import Runtime
from services.identity.staff import endpoints as staff
from services.identity.tokens import endpoints as tokens
from services.identity.tokens.clients import register_dev_clients
from services.identity.tokens.keys import ensure_key

TAGS = [
    {"name": "registration", "description": "Customer registration with real-name data and contact verification."},
    {"name": "login", "description": "Password login, second-factor challenges, lockout, password reset."},
    {"name": "tokens", "description": "JWKS, refresh-token rotation, client credentials, revocation feed."},
    {"name": "sessions", "description": "My sessions and devices; logout."},
    {"name": "second factors", "description": "TOTP, SMS/email codes, recovery codes, WebAuthn, step-up."},
    {"name": "account", "description": "The signed-in person's account."},
    {"name": "staff", "description": "Staff operations, each checked with the permissions service."},
    {"name": "internal", "description": "Calls from other services (service tokens)."},
]


def build_runtime(app: FastAPI, settings: IdentitySettings) -> Runtime:
    return Runtime.build(settings, app.state.database.sessionmaker, app.state.service_client)


def _lifespan(settings: IdentitySettings) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(app, settings)
        app.state.identity = runtime
        sessionmaker = app.state.database.sessionmaker
        async with sessionmaker() as session:
            await ensure_key(session, runtime.keyring.signing)
            if settings.register_dev_clients and settings.environment.allows_dev_secrets:
                await register_dev_clients(session, runtime)
            await session.commit()
        await runtime.keys.reload()

        # identity verifies its own tokens with the kit's verifier, reading its
        # key set directly rather than through the gateway. The verifier only
        # asks on an unknown kid (a key another replica just created); the key
        # store spaces its database reloads, so made-up kids cost nothing.
        async def own_jwks() -> Mapping[str, Any]:
            return await runtime.keys.jwks_for_unknown_kid()

        app.state.token_verifier = TokenVerifier(
            own_jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
            refetch_interval=0.0,
        )
        worker = NotificationWorker(sessionmaker, runtime)
        app.state.notification_worker = worker
        tasks = [
            asyncio.create_task(worker.run(), name="identity-notifications"),
            asyncio.create_task(
                purge_loop(
                    sessionmaker,
                    settings.login_log_retention_days,
                    86_400.0,
                    login_log_archive(settings.login_log_archive_dir),
                    notification_retention_days=settings.notification_retention_days,
                ),
                name="identity-log-purge",
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await worker.aclose()

    return lifespan


def create(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    return create_app(
        ServiceSpec(
            settings=settings,
            title="Identity service",
            description=(
                "Customer and staff accounts, passwords, MFA, sessions and tokens, devices and the login log."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            routers=[
                accounts.me,
                accounts.customer,
                tokens.me,
                tokens.internal,
                mfa.router,
                staff.staff,
                api_clients.staff,
                staff.internal,
            ],
            public_routers=[tokens.well_known, accounts.public, login.router, tokens.public],
            audit_log=audit_log,
            outbox=outbox,
            extra_lifespan=_lifespan(settings),
            openapi_tags=TAGS,
        )
    )
