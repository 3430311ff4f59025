"""Queries of incidents, their reports, observables and timeline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import Incident, IncidentEvent, IncidentReport, Observable, StepRun


async def insert_unless_open(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert an incident unless an open one has the same type and correlation key (None then).

    The partial unique index decides, so concurrent reports of one wave open one incident.
    """
    result = await session.execute(
        pg_insert(Incident)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["type", "correlation_key"], index_where=text("state NOT IN ('closed', 'rejected')")
        )
        .returning(Incident.id)
    )
    row = result.first()
    return row[0] if row is not None else None


async def open_with_key(session: AsyncSession, incident_type: str, correlation_key: str) -> Incident | None:
    result: Incident | None = await session.scalar(
        select(Incident)
        .where(
            Incident.type == incident_type,
            Incident.correlation_key == correlation_key,
            Incident.state.not_in(("closed", "rejected")),
        )
        .with_for_update(key_share=True)
    )
    return result


#: Incident rows are locked FOR NO KEY UPDATE (``key_share=True``): the lock that orders every change
#: of one incident (requests and the worker alike take it first), without blocking the foreign-key
#: checks of rows inserted for it (events, escalations) by other transactions.


async def get(session: AsyncSession, incident_id: uuid.UUID, *, for_update: bool = False) -> Incident | None:
    query = select(Incident).where(Incident.id == incident_id).execution_options(populate_existing=True)
    if for_update:
        query = query.with_for_update(key_share=True)
    result: Incident | None = await session.scalar(query)
    return result


async def lock_if_free(session: AsyncSession, incident_id: uuid.UUID) -> Incident | None:
    """The incident locked for this worker, or None while another holds it."""
    result: Incident | None = await session.scalar(
        select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update(skip_locked=True, key_share=True)
        .execution_options(populate_existing=True)
    )
    return result


async def listing(
    session: AsyncSession,
    *,
    state: str | None,
    incident_type: str | None,
    level: int | None,
    customer_id: uuid.UUID | None,
    created_from: datetime | None,
    created_to: datetime | None,
    limit: int,
) -> Sequence[Incident]:
    query = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
    if state is not None:
        query = query.where(Incident.state == state)
    if incident_type is not None:
        query = query.where(Incident.type == incident_type)
    if level is not None:
        query = query.where(Incident.level == level)
    if customer_id is not None:
        query = query.where(Incident.customer_id == customer_id)
    if created_from is not None:
        query = query.where(Incident.created_at >= created_from)
    if created_to is not None:
        query = query.where(Incident.created_at < created_to)
    return (await session.scalars(query)).all()


async def reports(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[IncidentReport]:
    return (
        await session.scalars(
            select(IncidentReport).where(IncidentReport.incident_id == incident_id).order_by(IncidentReport.received_at)
        )
    ).all()


async def observables(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[Observable]:
    return (
        await session.scalars(
            select(Observable).where(Observable.incident_id == incident_id).order_by(Observable.added_at)
        )
    ).all()


async def add_observable(
    session: AsyncSession, incident_id: uuid.UUID, kind: str, value: str, *, actor: str, now: datetime
) -> bool:
    result = await session.execute(
        pg_insert(Observable)
        .values(id=uuid.uuid4(), incident_id=incident_id, kind=kind, value=value, added_at=now, added_by=actor)
        .on_conflict_do_nothing(index_elements=["incident_id", "kind", "value"])
        .returning(Observable.id)
    )
    return result.first() is not None


async def events(session: AsyncSession, incident_id: uuid.UUID) -> Sequence[IncidentEvent]:
    return (
        await session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.at, IncidentEvent.seq)
        )
    ).all()


async def incident_of_delivery(session: AsyncSession, idempotency_key: str) -> uuid.UUID | None:
    result: uuid.UUID | None = await session.scalar(
        select(IncidentReport.incident_id).where(IncidentReport.idempotency_key == idempotency_key).limit(1)
    )
    return result


async def needing_attention(session: AsyncSession, limit: int = 200) -> Sequence[uuid.UUID]:
    """Open incidents with an automatic step still pending, or verified ones (containment may be done)."""
    pending = select(StepRun.incident_id).where(StepRun.status == "pending", StepRun.mode == "automatic").distinct()
    rows = await session.scalars(
        select(Incident.id)
        .where(
            Incident.state.not_in(("closed", "rejected")),
            (Incident.id.in_(pending)) | (Incident.state == "verified"),
        )
        .limit(limit)
    )
    return rows.all()
