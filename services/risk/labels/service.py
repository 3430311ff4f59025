"""Labels update the baselines (payee and customer fraud counts are read from them, known from
``labelled_at`` on) and are the next model's training data; a fraud label raises the customer's
risk level."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.decisions.service import set_risk_level
from services.risk.labels import repository
from services.risk.labels.schemas import LabelIn
from services.risk.models import audit_log


async def apply(session: AsyncSession, labels: list[LabelIn], *, actor: str, actor_kind: str) -> tuple[int, list[str]]:
    now = datetime.now(UTC)
    applied = 0
    unknown: list[str] = []
    fraud_customers: set[str] = set()
    for item in labels:
        found = await repository.set_label(
            session, item.transaction_id, item.label.value, item.labelled_at or now, item.source
        )
        if found is None:
            unknown.append(item.transaction_id)
            continue
        applied += 1
        if item.label.value == "fraud":
            fraud_customers.add(found[0])
    for customer_key in sorted(fraud_customers):
        await set_risk_level(session, customer_key, "high", reason="confirmed fraud")
    if applied:
        await audit_log.append(
            session,
            actor=actor,
            actor_kind=actor_kind,
            action="labels.applied",
            target=None,
            detail={"applied": applied, "fraud": sum(1 for i in labels if i.label.value == "fraud")},
        )
    return applied, unknown
