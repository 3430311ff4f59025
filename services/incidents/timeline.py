"""The incident's timeline and its audit chain, written together.

Every state change, report, step outcome, assignment and breach is one
timeline event (what the post-mortem's timeline is built from) and, when it is
security-relevant, one audit chain entry with who and why.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.models import IncidentEvent, audit_log


async def record(
    session: AsyncSession,
    incident_id: uuid.UUID,
    kind: str,
    *,
    at: datetime,
    actor: str,
    actor_kind: str,
    detail: dict[str, Any] | None = None,
    audit: bool = True,
    audit_detail: dict[str, Any] | None = None,
) -> None:
    """Add a timeline event; with ``audit`` also an audit chain entry ``incident.<kind>``.

    ``audit_detail`` replaces the detail in the audit entry where the timeline keeps free
    text (summaries, causes) that may name people: the chain carries ids, never personal data.

    Call audited records last in a transaction where possible: the chain's head
    lock is held until commit.
    """
    session.add(
        IncidentEvent(
            incident_id=incident_id, at=at, kind=kind, actor=actor, actor_kind=actor_kind, detail=detail or {}
        )
    )
    if audit:
        await audit_log.append(
            session,
            actor=actor,
            actor_kind=actor_kind,
            action=f"incident.{kind}",
            target=str(incident_id),
            detail=audit_detail if audit_detail is not None else (detail or {}),
        )
