"""The alert queue: assign, comment, resolve with a label (which labels the transaction)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.alerts import repository
from services.risk.alerts.schemas import AlertsSummaryOut, AnalystSummary
from services.risk.errors import AlertNotFound, AlertResolved, InvalidPeriod
from services.risk.labels import service as labels
from services.risk.labels.schemas import LabelIn, LabelValue
from services.risk.models import Alert, audit_log


async def _open(session: AsyncSession, alert_id: uuid.UUID) -> Alert:
    alert = await repository.locked(session, alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id}")
    if alert.status == "resolved":
        raise AlertResolved(f"alert {alert_id} was resolved")
    return alert


async def assign(session: AsyncSession, alert_id: uuid.UUID, assignee: str, *, actor: str) -> Alert:
    alert = await _open(session, alert_id)
    alert.assignee, alert.status = assignee, "assigned"
    await repository.add_comment(session, alert_id, actor, f"assigned to {assignee}")
    await session.flush()
    return alert


async def comment(session: AsyncSession, alert_id: uuid.UUID, body: str, *, actor: str) -> Alert:
    alert = await _open(session, alert_id)
    await repository.add_comment(session, alert_id, actor, body)
    return alert


async def resolve(session: AsyncSession, alert_id: uuid.UUID, label: str, note: str, *, actor: str) -> Alert:
    alert = await _open(session, alert_id)
    alert.status, alert.resolution = "resolved", label
    alert.resolved_by, alert.resolved_at = actor, datetime.now(UTC)
    if note:
        await repository.add_comment(session, alert_id, actor, note)
    if alert.transaction_id and label in {"fraud", "genuine"}:
        await labels.apply(
            session,
            [LabelIn(transaction_id=alert.transaction_id, label=LabelValue(label), source=f"alert:{alert_id}")],
            actor=actor,
            actor_kind="staff",
        )
    await audit_log.append(
        session,
        actor=actor,
        actor_kind="staff",
        action="alert.resolved",
        target=str(alert_id),
        detail={"resolution": label},
    )
    await session.flush()
    return alert


async def summary(session: AsyncSession, start: datetime, end: datetime) -> AlertsSummaryOut:
    """Alerts created in [start, end) per analyst: how many, still open, resolved and by outcome."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidPeriod("`from` and `to` need a time zone")
    if start >= end:
        raise InvalidPeriod("`to` must be after `from`")
    by_analyst: dict[str | None, AnalystSummary] = {}
    for analyst, status, resolution, n in await repository.summary(session, start, end):
        row = by_analyst.setdefault(analyst, AnalystSummary(analyst=analyst, alerts=0, open=0, resolved=0, outcomes={}))
        row.alerts += n
        if status == "resolved":
            row.resolved += n
            key = resolution or "unknown"
            row.outcomes[key] = row.outcomes.get(key, 0) + n
        else:
            row.open += n
    ordered = sorted(by_analyst.values(), key=lambda r: (r.analyst is None, r.analyst or ""))
    return AlertsSummaryOut(analysts=ordered)
