"""The response worker: plays playbooks on, watches the clocks, escalates what is late.

It holds no state of its own: every round reads the durable rows (step runs,
outbox deliveries, SLA clocks, reports up the chain, corrective actions) and
locks what it changes with `FOR UPDATE SKIP LOCKED`, so several replicas can
run it and a restart resumes where the rows say. Time comes from the
injected clock; tests call :meth:`ResponseWorker.tick` with the time they want.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.outbox import OutboxWorker
from services.incidents.clock import Clock
from services.incidents.config import IncidentsSettings
from services.incidents.incidents import repository as incident_repository
from services.incidents.incidents import service as incidents
from services.incidents.playbooks import repository as playbook_repository
from services.incidents.playbooks import service as playbooks
from services.incidents.postmortems import service as postmortems
from services.incidents.sla import service as sla
from services.incidents.team import service as team

logger = logging.getLogger("incidents.worker")


@dataclass
class TickResult:
    steps_settled: int = 0
    incidents_advanced: int = 0
    clocks_warned: int = 0
    clocks_breached: int = 0
    chain_overdue: int = 0
    actions_overdue: int = 0


class ResponseWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: IncidentsSettings,
        clock: Clock,
        outbox_worker: OutboxWorker | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.outbox_worker = outbox_worker
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("response round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.worker_poll_seconds)
            self._wake.clear()

    async def tick(self, now: datetime | None = None) -> TickResult:
        """One round, each part in its own short transaction."""
        now = now or self.clock()
        result = TickResult()
        async with self.sessionmaker() as session:
            ids = set(await playbook_repository.incidents_with_running_steps(session))
            ids |= set(await incident_repository.needing_attention(session))
            await session.rollback()
        for incident_id in sorted(ids):
            async with self.sessionmaker() as session, session.begin():
                # The incident's lock first, as every request takes it: one writer per incident at a time.
                incident = await incident_repository.lock_if_free(session, incident_id)
                if incident is None:
                    continue  # a request or another replica holds it; the next round sees it again
                before = incident.state
                result.steps_settled += await playbooks.reconcile(session, incident, now)
                started = await playbooks.advance(session, incident, self.settings, now)
                contained = await incidents.maybe_contain(session, incident, now)
                if started or contained or incident.state != before:
                    result.incidents_advanced += 1
        async with self.sessionmaker() as session, session.begin():
            result.clocks_warned, result.clocks_breached = await sla.tick(session, now)
        async with self.sessionmaker() as session, session.begin():
            result.chain_overdue = await team.chain_overdue(session, now)
            result.actions_overdue = await postmortems.escalate_overdue(session, now)
        if result.incidents_advanced and self.outbox_worker is not None:
            self.outbox_worker.wake()
        return result
