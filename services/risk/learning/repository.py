"""Queries of the model registry."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from services.risk.models import ModelChange, ModelState, ModelVersion


async def add(session: AsyncSession, version: ModelVersion) -> ModelVersion:
    session.add(version)
    await session.flush()
    await session.refresh(version, ["number", "created_at"])
    return version


async def get(session: AsyncSession, model_id: uuid.UUID, *, with_model: bool = False) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.id == model_id)
    if with_model:
        query = query.options(undefer(ModelVersion.model))
    return (await session.execute(query)).scalar_one_or_none()


async def list_versions(session: AsyncSession, *, state: str | None, limit: int) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.number.desc()).limit(limit)
    if state is not None:
        query = query.where(ModelVersion.state == state)
    return list((await session.execute(query)).scalars())


async def active(session: AsyncSession, *, with_model: bool = False) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.state == ModelState.active)
    if with_model:
        query = query.options(undefer(ModelVersion.model))
    return (await session.execute(query)).scalar_one_or_none()


async def active_stamp(session: AsyncSession) -> tuple[uuid.UUID, str] | None:
    """Id and hash of the active version: what replicas poll (one index lookup)."""
    row = (
        await session.execute(
            select(ModelVersion.id, ModelVersion.sha256).where(ModelVersion.state == ModelState.active)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def lock_registry(session: AsyncSession) -> None:
    """Serialise promotions and rollbacks (a transaction-scoped advisory lock)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('risk.model_registry'))"))


async def set_state(session: AsyncSession, version: ModelVersion, state: ModelState) -> None:
    now = text("now()")
    values: dict[str, object] = {"state": state.value}
    if state is ModelState.active:
        values["activated_at"] = now
        values["retired_at"] = None
    elif state is ModelState.retired:
        values["retired_at"] = now
    await session.execute(update(ModelVersion).where(ModelVersion.id == version.id).values(**values))
    await session.refresh(version)


async def add_change(session: AsyncSession, change: ModelChange) -> None:
    session.add(change)
    await session.flush()


async def last_change_to(session: AsyncSession, model_id: uuid.UUID) -> ModelChange | None:
    """The promotion or rollback that made this version active (the latest one)."""
    query = (
        select(ModelChange)
        .where(ModelChange.to_version == model_id)
        .order_by(ModelChange.created_at.desc(), ModelChange.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()
