"""The active model as scoring sees it, in every replica: ``ActiveModel.current()``.

Each replica polls the registry (one index lookup of the active version's id and hash)
every ``model_poll_seconds``; when they change it loads the stored bytes, checks their
SHA-256 and layout, and swaps the scorer in one assignment. Scoring never waits for the
database: :meth:`ActiveModel.current` returns what was loaded last, or ``None`` when no
version is active or the active one could not be loaded (scoring then answers from its
rules alone). When the database cannot be reached the loaded model stays in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.risk.learning import repository
from services.risk.learning.features import ModelScorer
from services.risk.learning.model import ModelFileRefused, load_model

logger = logging.getLogger("risk.learning")


class ActiveModel:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, poll_seconds: float = 5.0) -> None:
        self._sessionmaker = sessionmaker
        self._poll = poll_seconds
        self._scorer: ModelScorer | None = None
        self._stamp: tuple[uuid.UUID, str] | None = None

    def current(self) -> ModelScorer | None:
        """The loaded active model, or None (no active version, or it failed its checks)."""
        return self._scorer

    async def refresh(self) -> bool:
        """Follow the registry once; True when the model in use changed."""
        async with self._sessionmaker() as session:
            stamp = await repository.active_stamp(session)
            if stamp == self._stamp:
                return False
            if stamp is None:
                self._scorer, self._stamp = None, None
                logger.info("no model is active: scoring uses its rules alone")
                return True
            version = await repository.active(session, with_model=True)
        if version is None:  # changed between the two reads: the next poll settles it
            return False
        try:
            scorer = load_model(version.model, sha256=version.sha256, version=version.version)
        except ModelFileRefused:
            logger.exception("active model %s refused: scoring uses its rules alone", version.version)
            self._scorer = None
        else:
            self._scorer = scorer
            logger.info("model %s (sha256 %s) is now in use", version.version, version.sha256)
        self._stamp = (version.id, version.sha256)
        return True

    async def run(self) -> None:
        """Poll until cancelled; a failed poll keeps the model in use."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("could not poll the model registry; keeping the model in use", exc_info=True)
            await asyncio.sleep(self._poll)


@contextlib.asynccontextmanager
async def follow_active_model(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan part: ``app.state.active_model`` follows the registry while the app runs."""
    active = ActiveModel(app.state.database.sessionmaker, poll_seconds=app.state.settings.model_poll_seconds)
    app.state.active_model = active
    task = asyncio.create_task(active.run(), name="risk-active-model")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def get_active_model(request: Request) -> ActiveModel:
    active: ActiveModel = request.app.state.active_model
    return active
