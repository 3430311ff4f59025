"""Decisions that act (R-II.2.2), always through risk's outbox in the scoring transaction.

- freeze (score >= RISK_FREEZE_THRESHOLD): identity freezes the customer's account, an alert
  opens, and incidents is asked to open a case;
- block (>= RISK_BLOCK_THRESHOLD): the customer is warned through identity's notification channel,
  an alert opens;
- step_up / allow: the caller acts on the answer; nothing is sent.
Account risk levels (M5.3) follow the decisions and are pushed to identity when they change.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.baselines.service import TransactionFacts
from services.risk.config import RiskSettings
from services.risk.models import Alert, CustomerProfile, audit_log, outbox

if TYPE_CHECKING:
    from services.risk.scoring.service import Verdict

IDENTITY = "/v1/identity/internal/accounts"
INCIDENTS_REPORTS = "/v1/incidents/internal/reports"
PERMISSIONS_SUBJECTS = "/v1/permissions/internal/subjects"

BLOCK_MESSAGE = (
    "A payment from your account was stopped for your protection. If it was you, contact the bank "
    "through its official channels; never share one-time codes."
)


def grade_for(score: float) -> int:
    """1 (critical) .. 4 (low)."""
    if score >= 90:
        return 1
    if score >= 80:
        return 2
    if score >= 70:
        return 3
    return 4


async def act(
    session: AsyncSession, settings: RiskSettings, facts: TransactionFacts, verdict: Verdict, risk_level: str
) -> None:
    decision = verdict.decision.value
    if decision == "step_up" and risk_level == "low":
        await set_risk_level(session, facts.customer_key, "medium", reason=f"step-up of {facts.transaction_id}")
    if verdict.score < settings.alert_threshold and decision not in {"block", "freeze"}:
        return
    alert = Alert(
        id=uuid.uuid4(),
        category=verdict.category,
        grade=grade_for(verdict.score),
        score=verdict.score,
        customer_key=facts.customer_key,
        transaction_id=facts.transaction_id,
        decision=decision,
        summary=f"{facts.kind} of {facts.amount_minor} {facts.currency} scored {verdict.score:.2f}: {decision}",
        reasons=verdict.reasons,
    )
    session.add(alert)
    await session.flush()
    if decision == "freeze":
        if facts.customer_id:
            await outbox.enqueue(
                session,
                target="identity",
                path=f"{IDENTITY}/{facts.customer_id}/freeze",
                payload={"reason": f"risk: transaction {facts.transaction_id} scored {verdict.score:.2f}"},
                idempotency_key=f"risk-freeze:{facts.transaction_id}",
            )
        await report(
            session,
            key=f"risk-report:{facts.transaction_id}",
            source="risk_decision",
            type_="fraudulent_transaction",
            level=2,
            correlation_key=f"customer:{facts.customer_key}",
            summary=f"account frozen by risk: {facts.kind} scored {verdict.score:.2f}",
            occurred_at=facts.occurred_at,
            customer_id=facts.customer_id,
            account_id=facts.account_id,
            reference={"kind": "transaction", "id": facts.transaction_id},
            observables=_observables(facts),
        )
    elif decision == "block" and facts.customer_id:
        await outbox.enqueue(
            session,
            target="identity",
            path=f"{IDENTITY}/{facts.customer_id}/notifications",
            payload={"event": "transaction_blocked", "message": BLOCK_MESSAGE},
            idempotency_key=f"risk-notify:{facts.transaction_id}",
        )
    if decision in {"block", "freeze"}:
        await audit_log.append(
            session,
            actor="risk",
            actor_kind="service",
            action=f"transaction.{decision}",
            target=facts.transaction_id,
            detail={
                "customer_key": facts.customer_key,
                "score": verdict.score,
                "rules": [h.rule.code for h in verdict.hits],
                "alert_id": str(alert.id),
            },
        )
        await set_risk_level(session, facts.customer_key, "high", reason=f"{decision} of {facts.transaction_id}")


def _observables(facts: TransactionFacts) -> list[dict[str, str]]:
    found = [
        {"kind": "transaction", "value": facts.transaction_id},
        {"kind": "account", "value": facts.account_id},
        {"kind": "payee", "value": facts.payee},
    ]
    if facts.ip:
        found.append({"kind": "ip", "value": facts.ip})
    if facts.device_id:
        found.append({"kind": "device", "value": facts.device_id})
    return found


async def report(
    session: AsyncSession,
    *,
    key: str,
    source: str,
    type_: str,
    level: int | None,
    correlation_key: str,
    summary: str,
    occurred_at: datetime,
    customer_id: str | None = None,
    account_id: str | None = None,
    staff_id: str | None = None,
    reference: dict[str, str],
    observables: list[dict[str, str]],
) -> None:
    """Ask incidents to open (or join) a case (contract: docs/contracts.md, section Incidents)."""
    await outbox.enqueue(
        session,
        target="incidents",
        path=INCIDENTS_REPORTS,
        payload={
            "source": source,
            "type": type_,
            "level": level,
            "correlation_key": correlation_key,
            "summary": summary,
            "occurred_at": occurred_at.isoformat(),
            "customer_id": customer_id,
            "account_id": account_id,
            "staff_id": staff_id,
            "reference": reference,
            "observables": observables,
        },
        idempotency_key=key,
    )


async def report_login(
    session: AsyncSession, *, account_id: str, occurred_at: datetime, score: float, reasons: list[str], ip: str | None
) -> None:
    observables = [{"kind": "account", "value": account_id}]
    if ip:
        observables.append({"kind": "ip", "value": ip})
    await report(
        session,
        key=f"risk-login:{account_id}:{occurred_at.isoformat()}",
        source="risk_decision",
        type_="login_anomaly",
        level=3,
        correlation_key=f"customer:{account_id}",
        summary=f"login denied by risk (score {score:.2f}): {', '.join(reasons)}",
        occurred_at=occurred_at,
        customer_id=account_id,
        reference={"kind": "login", "id": f"{account_id}@{occurred_at.isoformat()}"},
        observables=observables,
    )


LISTED = text(
    """
    SELECT list FROM risk.list_entry
     WHERE removed_at IS NULL AND verdict = 'block' AND (expires_at IS NULL OR expires_at > now())
       AND ((list = 'ip' AND value = :ip) OR (list = 'device' AND value = :d))
    """
)


async def listed(session: AsyncSession, *, ip: str | None, device_id: str | None) -> list[str]:
    """Reason codes for a blocked IP or device of a login."""
    if ip is None and device_id is None:
        return []
    rows = (await session.execute(LISTED, {"ip": ip, "d": device_id})).scalars()
    return sorted({f"blocked_{name}" for name in rows})


async def risk_level_of(session: AsyncSession, customer_key: str) -> str:
    level = await session.scalar(select(CustomerProfile.risk_level).where(CustomerProfile.customer_key == customer_key))
    return level or "low"


async def set_risk_level(session: AsyncSession, customer_key: str, level: str, *, reason: str) -> bool:
    """Change a customer's level (M5.3) and push it to identity through the outbox when it changed."""
    profile = await session.get(CustomerProfile, customer_key, with_for_update=True)
    if profile is None:
        profile = CustomerProfile(customer_key=customer_key, risk_level="low")
        session.add(profile)
        await session.flush()
    if profile.risk_level == level and profile.risk_level_pushed == level:
        return False
    profile.risk_level = level
    customer_id = profile.customer_id or (None if customer_key.startswith("acct:") else customer_key)
    if customer_id is not None:
        await outbox.enqueue(
            session,
            target="identity",
            method="PUT",
            path=f"{IDENTITY}/{customer_id}/risk-level",
            payload={"level": level, "reason": reason[:200]},
            idempotency_key=f"risk-level:{customer_key}:{uuid.uuid4()}",
        )
        profile.risk_level_pushed = level
    await session.flush()
    return True
