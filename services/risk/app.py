"""The risk service: `uvicorn --factory services.risk.app:create`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from kit.app import ServiceSpec, create_app
from services.risk.alerts import endpoints as alerts
from services.risk.config import RiskSettings
from services.risk.decisions import endpoints as decisions
from services.risk.deps import ModelSource
from services.risk.history import endpoints as history
from services.risk.labels import endpoints as labels
from services.risk.learning.active import follow_active_model
from services.risk.learning.endpoints import staff as model_registry
from services.risk.lists import endpoints as lists
from services.risk.models import Base, audit_log, outbox
from services.risk.rules import endpoints as rules
from services.risk.rules.book import RuleBook, ensure_default_ruleset
from services.risk.scoring import endpoints as scoring
from services.risk.staff import endpoints as staff

logger = logging.getLogger("risk")


def create(settings: RiskSettings | None = None, *, model_source: ModelSource | None = None) -> FastAPI:
    """``model_source``: where scoring gets the promoted model (``current()``); rules only without one."""
    settings = settings or RiskSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sessionmaker = app.state.database.sessionmaker
        try:
            async with sessionmaker() as session:
                await ensure_default_ruleset(session)
                await session.commit()
        except (OSError, SQLAlchemyError):
            # The process starts without its database (it is then not ready); until the
            # default set is stored, the rule book answers with the same defaults.
            logger.warning("could not store the default rule set at start-up", exc_info=True)
        app.state.rulebook = RuleBook(sessionmaker, refresh_seconds=settings.ruleset_refresh_seconds)
        async with follow_active_model(app):
            # Scoring asks the registry's promoted model, unless a test hands it a model of its own.
            app.state.model_source = model_source or app.state.active_model
            yield

    return create_app(
        ServiceSpec(
            settings=settings,
            title="Risk service",
            description=(
                "Real-time scoring of logins and transactions from rules, behaviour "
                "baselines and a model; decisions that act, lists, labels and alerts."
            ),
            metadata=Base.metadata,
            migrations_dir=Path(__file__).parent / "migrations",
            routers=[
                scoring.internal,
                lists.internal,
                lists.staff,
                labels.internal,
                labels.staff,
                alerts.staff,
                alerts.internal,
                rules.staff,
                history.staff,
                decisions.internal,
                staff.internal,
                model_registry,
            ],
            audit_log=audit_log,
            outbox=outbox,
            extra_lifespan=lifespan,
            openapi_tags=[
                {"name": "scoring", "description": "Scores with reasons and decisions for transactions and logins."},
                {"name": "lists", "description": "Shared block and allow lists (ip, device, payee, phishing domain)."},
                {"name": "labels", "description": "Outcomes of transactions: baselines and training data."},
                {"name": "rules", "description": "Versioned CEL rule sets: approval, shadow runs, backtests."},
                {"name": "decisions", "description": "Scored decisions for sampling audits."},
                {"name": "staff", "description": "Staff behaviour signals (M2.2)."},
                {"name": "history", "description": "Labelled transaction history imports."},
                {"name": "alerts", "description": "The analysts' queue: assign, comment, resolve with a label."},
                {"name": "models", "description": "The model registry: versions, evaluation, promotion, rollback."},
            ],
        )
    )
