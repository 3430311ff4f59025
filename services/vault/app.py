"""The vault service: `uvicorn --factory services.vault.app:create`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.vault.access.endpoints import customer_router as access_customer_router
from services.vault.access.endpoints import staff_router as access_staff_router
from services.vault.audit_samples.endpoints import internal_router as audit_samples_router
from services.vault.catalogue_endpoints import router as catalogue_router
from services.vault.config import VaultSettings
from services.vault.keys.endpoints import root_router
from services.vault.keys.endpoints import router as keys_router
from services.vault.keys.rewrap import RewrapWorker, running
from services.vault.models import Base, audit_log, outbox
from services.vault.records.endpoints import internal_router as records_internal_router
from services.vault.records.endpoints import staff_router as records_staff_router
from services.vault.state import Vault
from services.vault.transit.endpoints import router as transit_router

TAGS = [
    {"name": "records (staff)", "description": "Personal-data records for bank staff: masked by default."},
    {"name": "records (services)", "description": "The same records for the other services (client ids)."},
    {"name": "transit (services)", "description": "Encryption as a service: encrypt, decrypt, rewrap, batches."},
    {"name": "keys", "description": "Key rings, versions, rotation, rewrap and retirement (key custodians)."},
    {"name": "access log", "description": "Every read and decrypt, for auditors and for the customer."},
    {"name": "catalogue", "description": "Field types, data classes, masking rules and who may read what."},
]


def create(settings: VaultSettings | None = None) -> FastAPI:
    settings = settings or VaultSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        vault = Vault.from_settings(settings)
        app.state.vault = vault
        worker = RewrapWorker(app.state.database.sessionmaker, vault.keys, batch_size=settings.rewrap_batch_size)
        app.state.rewrap_worker = worker
        async with running(worker, settings.rewrap_poll_seconds, settings.rewrap_enabled):
            yield

    return create_app(
        ServiceSpec(
            settings=settings,
            title="Vault service",
            description=(
                "Encrypted storage of personal data: envelope encryption, key "
                "rotation, masking, tokens, blind-index lookup and the access log."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            routers=[
                records_staff_router,
                records_internal_router,
                transit_router,
                keys_router,
                root_router,
                access_staff_router,
                access_customer_router,
                catalogue_router,
                audit_samples_router,  # sampling audits of the incidents service (scope audit:sample)
            ],
            audit_log=audit_log,
            outbox=outbox,
            extra_lifespan=lifespan,
            openapi_tags=TAGS,
        )
    )
