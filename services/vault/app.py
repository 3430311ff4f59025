"""The vault service: `uvicorn --factory services.vault.app:create`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.vault.config import VaultSettings
from services.vault.models import Base, audit_log, outbox


def create(settings: VaultSettings | None = None) -> FastAPI:
    return create_app(
        ServiceSpec(
            settings=settings or VaultSettings(),
            title="Vault service",
            description=(
                "Encrypted storage of personal data: envelope encryption, key "
                "rotation, masking, tokens, blind-index lookup and the access log."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            audit_log=audit_log,
            outbox=outbox,
        )
    )
