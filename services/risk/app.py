"""The risk service: `uvicorn --factory services.risk.app:create`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from kit.app import ServiceSpec, create_app
from services.risk.config import RiskSettings
from services.risk.learning.active import follow_active_model
from services.risk.learning.endpoints import staff as model_registry
from services.risk.models import Base, audit_log, outbox


def create(settings: RiskSettings | None = None) -> FastAPI:
    return create_app(
        ServiceSpec(
            settings=settings or RiskSettings(),
            title="Risk service",
            description=(
                "Real-time scoring of logins and transactions from rules, behaviour "
                "baselines and a model; alerts, risk register and KPIs."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            audit_log=audit_log,
            outbox=outbox,
            routers=[model_registry],
            extra_lifespan=follow_active_model,
        )
    )
