"""The permissions service: `uvicorn --factory services.permissions.app:create`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.permissions.config import PermissionsSettings
from services.permissions.models import Base, audit_log, outbox


def create(settings: PermissionsSettings | None = None) -> FastAPI:
    return create_app(
        ServiceSpec(
            settings=settings or PermissionsSettings(),
            title="Permissions service",
            description=(
                "Roles, grants, permission checks with reasons, segregation "
                "of duties, maker-checker approvals and access reviews."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            audit_log=audit_log,
            outbox=outbox,
        )
    )
