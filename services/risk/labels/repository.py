"""Queries of labels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import ScoredTransaction


async def set_label(
    session: AsyncSession, transaction_id: str, label: str, labelled_at: datetime, source: str
) -> tuple[str, str | None] | None:
    """Label one transaction; returns its customer key and customer id, None when unknown."""
    row = (
        await session.execute(
            update(ScoredTransaction)
            .where(ScoredTransaction.transaction_id == transaction_id)
            .values(label=label, labelled_at=labelled_at, label_source=source)
            .returning(ScoredTransaction.customer_key, ScoredTransaction.customer_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])
