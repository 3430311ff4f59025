"""The risk service's runtime objects as typed request dependencies.

The model: scoring asks ``ModelSource.current()`` for a loaded, promoted
:class:`~services.risk.learning.features.ModelScorer` on every score; ``None``
(no model promoted yet, or it failed to load) means rules-only scoring, which
is also the fail-safe path. The learning package wires its registry at merge
by putting any object with ``current()`` into ``app.state.model_source``
(see ``services.risk.app.create``'s ``model_source`` argument).
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.permissions import PermissionClient
from services.risk.config import RiskSettings
from services.risk.learning.features import ModelScorer
from services.risk.rules.book import RuleBook


class ModelSource(Protocol):
    def current(self) -> ModelScorer | None: ...


class FixedModel:
    """A model source that always answers the same scorer (``None``: rules only)."""

    def __init__(self, scorer: ModelScorer | None = None) -> None:
        self.scorer = scorer

    def current(self) -> ModelScorer | None:
        return self.scorer


async def get_settings(request: Request) -> RiskSettings:
    settings = request.app.state.settings
    assert isinstance(settings, RiskSettings)
    return settings


async def get_rulebook(request: Request) -> RuleBook:
    book: RuleBook = request.app.state.rulebook
    return book


async def get_model_source(request: Request) -> ModelSource:
    source: ModelSource = request.app.state.model_source
    return source


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.database.sessionmaker
    return maker


async def get_permission_client(request: Request) -> PermissionClient:
    client: PermissionClient = request.app.state.permission_client
    return client


Settings = Annotated[RiskSettings, Depends(get_settings)]
Rules = Annotated[RuleBook, Depends(get_rulebook)]
Models = Annotated[ModelSource, Depends(get_model_source)]
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
Permissions = Annotated[PermissionClient, Depends(get_permission_client)]
