"""The incidents service: `uvicorn --factory services.incidents.app:create`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.incidents.clock import Clock, system_clock
from services.incidents.config import IncidentsSettings
from services.incidents.governance import routers as governance
from services.incidents.incidents import endpoints as incidents
from services.incidents.kpis import endpoints as kpis
from services.incidents.models import Base, audit_log, outbox
from services.incidents.playbooks import endpoints as playbooks
from services.incidents.postmortems import endpoints as postmortems
from services.incidents.sla import endpoints as sla
from services.incidents.team import endpoints as team
from services.incidents.worker import ResponseWorker


def create(settings: IncidentsSettings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    settings = settings or IncidentsSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clock = clock
        worker = ResponseWorker(
            app.state.database.sessionmaker, settings, clock, getattr(app.state, "outbox_worker", None)
        )
        app.state.response_worker = worker
        task = asyncio.create_task(worker.run(), name="incidents-response") if settings.worker_enabled else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return create_app(
        ServiceSpec(
            settings=settings,
            title="Incidents service",
            description=(
                "Security incidents from report to post-mortem: playbooks, SLAs, responsibilities and audit findings."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            routers=[
                incidents.internal,
                incidents.customer,
                incidents.staff,
                playbooks.staff,
                sla.staff,
                team.staff,
                postmortems.staff,
                kpis.staff,
                *governance.ROUTERS,
            ],
            audit_log=audit_log,
            outbox=outbox,
            extra_lifespan=lifespan,
            openapi_tags=[
                {"name": "incidents", "description": "Intake (services, customers, staff), the record, transitions."},
                {"name": "playbooks", "description": "Playbooks as data, and an incident's steps."},
                {"name": "sla", "description": "SLA clocks, pauses, escalations, breaches."},
                {"name": "team", "description": "Response team, on-call rota, reporting up the chain."},
                {"name": "postmortems", "description": "Post-mortems, corrective actions, accountability."},
                {"name": "kpis", "description": "Incident KPIs as JSON or CSV."},
                *governance.OPENAPI_TAGS,
            ],
        )
    )
