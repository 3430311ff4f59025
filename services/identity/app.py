"""The identity service: `uvicorn --factory services.identity.app:create`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.identity.config import IdentitySettings
from services.identity.models import Base, audit_log, outbox


def create(settings: IdentitySettings | None = None) -> FastAPI:
    return create_app(
        ServiceSpec(
            settings=settings or IdentitySettings(),
            title="Identity service",
            description=(
                "Customer and staff accounts, passwords, MFA, sessions and tokens, devices and the login log."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            audit_log=audit_log,
            outbox=outbox,
        )
    )
