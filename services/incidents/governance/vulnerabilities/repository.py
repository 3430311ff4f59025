"""Queries of vulnerabilities."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import RegisterRisk, Vulnerability


async def add(session: AsyncSession, row: Vulnerability) -> None:
    session.add(row)
    await session.flush()
    await session.refresh(row, ["created_at"])


async def get(session: AsyncSession, vulnerability_id: uuid.UUID, *, lock: bool = False) -> Vulnerability | None:
    query = select(Vulnerability).where(Vulnerability.id == vulnerability_id)
    return (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()


async def risk_exists(session: AsyncSession, risk_id: uuid.UUID) -> bool:
    return (await session.execute(select(RegisterRisk.id).where(RegisterRisk.id == risk_id))).first() is not None


async def search(
    session: AsyncSession,
    *,
    status: str | None = None,
    severity: str | None = None,
    found_from: date | None = None,
    found_to: date | None = None,
) -> list[Vulnerability]:
    query = select(Vulnerability)
    if status is not None:
        query = query.where(Vulnerability.status == status)
    if severity is not None:
        query = query.where(Vulnerability.severity == severity)
    if found_from is not None:
        query = query.where(Vulnerability.found_on >= found_from)
    if found_to is not None:
        query = query.where(Vulnerability.found_on <= found_to)
    return list((await session.execute(query.order_by(Vulnerability.due_on, Vulnerability.created_at))).scalars())
