"""The incidents service: `uvicorn --factory services.incidents.app:create`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.incidents.config import IncidentsSettings
from services.incidents.governance import routers as governance
from services.incidents.models import Base, audit_log, outbox


def create(settings: IncidentsSettings | None = None) -> FastAPI:
    return create_app(
        ServiceSpec(
            settings=settings or IncidentsSettings(),
            title="Incidents service",
            description=(
                "Security incidents from report to post-mortem: playbooks, SLAs, responsibilities and audit findings."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            audit_log=audit_log,
            outbox=outbox,
            # --- governance routers (services/incidents/governance/) ---
            routers=[*governance.ROUTERS],
            openapi_tags=[*governance.OPENAPI_TAGS],
        )
    )
