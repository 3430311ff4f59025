"""Queries of playbooks and step runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import Observable, Playbook, StepRun, StepStatus, outbox


async def active_playbook(session: AsyncSession, incident_type: str) -> Playbook | None:
    result: Playbook | None = await session.scalar(
        select(Playbook).where(Playbook.type == incident_type, Playbook.active.is_(True))
    )
    return result


async def versions(session: AsyncSession, incident_type: str) -> Sequence[Playbook]:
    return (
        await session.scalars(select(Playbook).where(Playbook.type == incident_type).order_by(Playbook.version.desc()))
    ).all()


async def all_active(session: AsyncSession) -> Sequence[Playbook]:
    return (await session.scalars(select(Playbook).where(Playbook.active.is_(True)).order_by(Playbook.type))).all()


async def steps_of(session: AsyncSession, incident_id: uuid.UUID, *, for_update: bool = False) -> Sequence[StepRun]:
    query = select(StepRun).where(StepRun.incident_id == incident_id).order_by(StepRun.position)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).all()


async def step(session: AsyncSession, incident_id: uuid.UUID, position: int) -> StepRun | None:
    result: StepRun | None = await session.scalar(
        select(StepRun).where(StepRun.incident_id == incident_id, StepRun.position == position).with_for_update()
    )
    return result


async def incidents_with_running_steps(session: AsyncSession, limit: int = 200) -> Sequence[uuid.UUID]:
    """Incidents with a step waiting on an outbox delivery."""
    return (
        await session.scalars(
            select(StepRun.incident_id).where(StepRun.status == StepStatus.running.value).distinct().limit(limit)
        )
    ).all()


async def deliveries(session: AsyncSession, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Status and last error of outbox messages by idempotency key."""
    table = outbox.messages
    rows = (
        await session.execute(
            select(table.c.idempotency_key, table.c.status, table.c.last_error).where(
                table.c.idempotency_key.in_(list(keys))
            )
        )
    ).all()
    return {row.idempotency_key: (row.status, row.last_error) for row in rows}


async def observables_of(session: AsyncSession, incident_id: uuid.UUID, kind: str) -> list[str]:
    return list(
        (
            await session.scalars(
                select(Observable.value)
                .where(Observable.incident_id == incident_id, Observable.kind == kind)
                .order_by(Observable.added_at)
            )
        ).all()
    )


async def next_version(session: AsyncSession, incident_type: str) -> int:
    current = await versions(session, incident_type)
    return (current[0].version + 1) if current else 1
