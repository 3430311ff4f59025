"""The permissions service: `uvicorn --factory services.permissions.app:create`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.permissions.approvals import endpoints as approvals
from services.permissions.audit_samples import endpoints as audit_samples
from services.permissions.checks import endpoints as checks
from services.permissions.checks.store import LocalChecker, PolicyStore
from services.permissions.config import PermissionsSettings
from services.permissions.grants import endpoints as grants
from services.permissions.grants.service import (
    GRANT_OPERATION,
    ROLE_CHANGE_OPERATION,
    grant_applier,
    role_change_applier,
)
from services.permissions.models import Base, audit_log, outbox
from services.permissions.reviews import endpoints as reviews
from services.permissions.subjects import endpoints as subjects
from services.permissions.subjects.service import LIFT_OPERATION, lift_applier


def create(settings: PermissionsSettings | None = None) -> FastAPI:
    settings = settings or PermissionsSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = PolicyStore(app.state.database.sessionmaker, refresh_seconds=settings.index_refresh_seconds)
        await store.ensure_fresh()
        app.state.policy_store = store
        # RequirePermission on this service's own routes asks the local index, not itself over HTTP.
        app.state.permission_client = LocalChecker(store)
        app.state.internal_executors = {
            GRANT_OPERATION: grant_applier(settings, store),
            LIFT_OPERATION: lift_applier(store),
            ROLE_CHANGE_OPERATION: role_change_applier(store),
        }
        upkeep = asyncio.create_task(store.run(settings.usage_flush_seconds), name="permissions-index")
        try:
            yield
        finally:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
            await store.close()

    return create_app(
        ServiceSpec(
            settings=settings,
            title="Permissions service",
            description=(
                "Roles, grants, permission checks with reasons, segregation "
                "of duties, maker-checker approvals and access reviews."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            routers=[
                checks.internal,
                checks.staff,
                grants.staff,
                grants.me,
                approvals.staff,
                approvals.internal,
                subjects.internal,
                subjects.staff,
                reviews.staff,
                audit_samples.internal,  # sampling audits of the incidents service (scope audit:sample)
            ],
            audit_log=audit_log,
            outbox=outbox,
            extra_lifespan=lifespan,
            openapi_tags=[
                {"name": "checks", "description": "Allow or deny with the reason."},
                {"name": "grants", "description": "Roles, grant requests, grants, SoD rules."},
                {"name": "approvals", "description": "Maker-checker approvals of high-risk operations."},
                {"name": "subjects", "description": "Staff status, suspensions, training records."},
                {"name": "reviews", "description": "Access-review campaigns and the over-privilege report."},
            ],
        )
    )
