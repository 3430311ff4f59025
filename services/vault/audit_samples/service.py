"""Unmasked reads of personal data in a period, from the vault's audit chain (for sampling audits).

Whether a read needed an approval is judged with the vault's own rule
(:func:`services.vault.access.policy.approval_reasons`) on the read's record
count and fields, so the auditor sees the reads that should carry one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.vault.access.policy import ReadIntent, approval_reasons
from services.vault.audit_samples.schemas import ReadSample, SampledRead
from services.vault.catalogue import FIELD_TYPES
from services.vault.config import VaultSettings
from services.vault.models import audit_log

UNMASKED_READ = "vault.decrypt"


async def read_sample(
    session: AsyncSession, settings: VaultSettings, *, since: datetime, until: datetime, after: int, limit: int
) -> ReadSample:
    t = audit_log.entries
    rows = (
        await session.execute(
            select(t)
            .where(t.c.seq > after, t.c.action == UNMASKED_READ, t.c.outcome == "success")
            .where(t.c.occurred_at >= since, t.c.occurred_at < until)
            .order_by(t.c.seq)
            .limit(limit)
        )
    ).all()
    reads = []
    for row in rows:
        detail = row.detail or {}
        fields = [f for f in detail.get("fields", []) if f in FIELD_TYPES]
        records = [uuid.UUID(r) for r in detail.get("records", [])]
        intent = ReadIntent(
            record_ids=records,
            subject_ids=[],
            fields=fields,
            purpose=str(detail.get("purpose") or ""),
            reference=None,
            unmasked=True,
        )
        reads.append(
            SampledRead(
                seq=row.seq,
                id=row.id,
                occurred_at=row.occurred_at,
                actor=row.actor,
                actor_kind=row.actor_kind,
                purpose=detail.get("purpose") or None,
                reference=detail.get("reference"),
                fields=sorted(detail.get("fields", [])),
                records=len(records),
                approval_required=bool(approval_reasons(intent, settings)),
                approval_id=detail.get("approval_id"),
                approved_by=[str(a) for a in detail.get("approved_by", [])],
            )
        )
    return ReadSample(reads=reads, next_after=reads[-1].seq if len(reads) == limit else None)
