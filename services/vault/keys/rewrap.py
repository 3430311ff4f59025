"""Background rewrap: move a records ring's data keys to its current KEK version.

Only the data keys are rewrapped (unwrap with the old KEK, wrap with the new
one); the personal data under them is untouched, so a rewrap of a million
values costs one small AES operation per subject, not per value. Work is done
in batches, each its own transaction, with the job row locked ``FOR UPDATE
SKIP LOCKED`` so several replicas never process the same job at once; a crash
loses at most the batch in flight, which the next step redoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.vault.keys.service import KeyStore, dek_aad
from services.vault.models import DataKey, KeyRing, RewrapJob, audit_log

logger = logging.getLogger("vault.rewrap")

RUNNING = "running"
DONE = "done"
FAILED = "failed"


async def outstanding(session: AsyncSession, ring_id: object, below: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(DataKey).where(DataKey.key_ring_id == ring_id, DataKey.kek_version < below)
    )
    return int(count or 0)


class RewrapWorker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], keys: KeyStore, *, batch_size: int) -> None:
        self.sessionmaker = sessionmaker
        self.keys = keys
        self.batch_size = batch_size

    async def step(self) -> bool:
        """Process one batch of one running job; False when there was nothing to do."""
        async with self.sessionmaker() as session:
            job = (
                await session.execute(
                    select(RewrapJob)
                    .where(RewrapJob.state == RUNNING)
                    .order_by(RewrapJob.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if job is None:
                return False
            ring_name = await session.scalar(select(KeyRing.name).where(KeyRing.id == job.key_ring_id))
            assert ring_name is not None
            ring = await self.keys.get(session, ring_name, fresh=True)
            job.target_version = ring.current_version
            batch = (
                (
                    await session.execute(
                        select(DataKey)
                        .where(DataKey.key_ring_id == ring.id, DataKey.kek_version < ring.current_version)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            now = datetime.now(UTC)
            for key in batch:
                aad = dek_aad(key.subject_id, ring.id)
                material = ring.unwrap_key(key.kek_version, key.wrapped_key, aad)
                key.kek_version, key.wrapped_key = ring.wrap_key(material, aad)
                key.rewrapped_at = now
            job.done += len(batch)
            await session.flush()
            if await outstanding(session, ring.id, ring.current_version) == 0:
                job.state = DONE
                job.finished_at = now
                job.total = max(job.total, job.done)
                await audit_log.append(
                    session,
                    actor="vault",
                    actor_kind="service",
                    action="vault.key.rewrap_completed",
                    target=ring.name,
                    detail={"job": str(job.id), "version": ring.current_version, "rewrapped": job.done},
                )
            await session.commit()
            return True

    async def drain(self) -> None:
        """Run steps until no job has work left (tests and the CLI use it)."""
        while await self.step():
            pass

    async def run(self, poll_seconds: float) -> None:
        while True:
            try:
                worked = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("rewrap step failed")
                worked = False
            if not worked:
                await asyncio.sleep(poll_seconds)


@contextlib.asynccontextmanager
async def running(worker: RewrapWorker, poll_seconds: float, enabled: bool) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run(poll_seconds), name="vault-rewrap") if enabled else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
