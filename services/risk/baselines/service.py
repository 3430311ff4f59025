"""Baselines of one transaction: the model's FeatureInput and the rules' variables from one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.baselines import repository
from services.risk.learning.features import PAYEE_WINDOWS, CustomerWindow, FeatureInput, PayeeWindow


@dataclass(frozen=True, slots=True)
class TransactionFacts:
    """What the caller told us about a transaction (the scoring request, or an imported row)."""

    transaction_id: str
    customer_key: str
    account_id: str
    customer_id: str | None
    payee: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    kind: str
    channel: str
    ip: str | None = None
    device_id: str | None = None
    region: str | None = None
    session_id: str | None = None
    approval_id: str | None = None


def customer_key_of(customer_id: str | None, account_id: str) -> str:
    """identity's customer id when known (logins are keyed by it), else the core system's account."""
    return customer_id if customer_id else f"acct:{account_id}"


@dataclass(frozen=True, slots=True)
class Baseline:
    features: FeatureInput
    variables: dict[str, Any]  # what the rules read


def _minutes_between(later: datetime, earlier: datetime | None) -> float:
    return -1.0 if earlier is None else (later - earlier).total_seconds() / 60.0


def build(facts: TransactionFacts, row: dict[str, Any], risk_level: str) -> Baseline:
    payee = row["payee"] or {}
    lists = row["lists"] or {}
    t = facts.occurred_at
    prev_at: datetime | None = row["prev_at"]
    features = FeatureInput(
        amount_minor=facts.amount_minor,
        occurred_at=t,
        kind=facts.kind,
        channel=facts.channel,
        customer={
            "1h": CustomerWindow(int(row["n1h"]), int(row["a1h"])),
            "1d": CustomerWindow(int(row["n1d"]), int(row["a1d"])),
            "7d": CustomerWindow(int(row["n7d"]), int(row["a7d"])),
            "30d": CustomerWindow(int(row["n30d"]), int(row["a30d"])),
        },
        payee={w: PayeeWindow(int(payee.get(f"n{w}", 0)), int(payee.get(f"f{w}", 0))) for w in PAYEE_WINDOWS},
        seconds_since_last=None if prev_at is None else (t - prev_at).total_seconds(),
        new_payee=not row["seen_payee"],
        new_device=facts.device_id is not None and not row["seen_device"],
        new_region=facts.region is not None and not row["seen_region"],
        customer_fraud_count=int(row["customer_fraud"]),
    )
    variables: dict[str, Any] = {
        "amount_minor": facts.amount_minor,
        "currency": facts.currency,
        "kind": facts.kind,
        "channel": facts.channel,
        "payee": facts.payee,
        "region": facts.region or "",
        "ip": facts.ip or "",
        "device_id": facts.device_id or "",
        "hour": t.hour,
        "count_1h": int(row["n1h"]),
        "amount_1h": int(row["a1h"]),
        "count_1d": int(row["n1d"]),
        "amount_1d": int(row["a1d"]),
        "count_7d": int(row["n7d"]),
        "amount_7d": int(row["a7d"]),
        "count_30d": int(row["n30d"]),
        "amount_30d": int(row["a30d"]),
        "avg_amount_30d": float(row["avg30d"]),
        "max_amount_30d": int(row["max30d"]),
        "seconds_since_last": -1.0 if features.seconds_since_last is None else features.seconds_since_last,
        "new_payee": features.new_payee,
        "new_device": features.new_device,
        "new_region": features.new_region,
        "usual_hour": int(row["near_hour"]) > 0,
        "payee_count_30d": features.payee["30d"].count,
        "payee_fraud_30d": features.payee["30d"].fraud_count,
        "customer_fraud_count": features.customer_fraud_count,
        "login_region": row["login_region"] or "",
        "login_minutes_ago": _minutes_between(t, row["login_at"]),
        "prev_region": row["prev_region"] or "",
        "prev_minutes_ago": _minutes_between(t, prev_at),
        "recent_failures": int(row["failed_logins_1h"]) + int(row["declined_1h"]),
        "declined_1h": int(row["declined_1h"]),
        "ip_blocked": bool(lists.get("ip_blocked", False)),
        "device_blocked": bool(lists.get("device_blocked", False)),
        "payee_blocked": bool(lists.get("payee_blocked", False)),
        "ip_allowed": bool(lists.get("ip_allowed", False)),
        "device_allowed": bool(lists.get("device_allowed", False)),
        "payee_allowed": bool(lists.get("payee_allowed", False)),
        "payee_phishing": bool(lists.get("payee_phishing", False)),
        "risk_level": risk_level,
    }
    return Baseline(features=features, variables=variables)


async def lock(session: AsyncSession, facts: TransactionFacts) -> tuple[str, dict[str, Any] | None]:
    """Lock the customer's profile (serialising their scoring); their risk level and the stored decision."""
    return await repository.lock_profile(session, facts.customer_key, facts.customer_id, facts.transaction_id)


async def baseline_of(
    session: AsyncSession, facts: TransactionFacts, risk_level: str, *, login_window_minutes: int
) -> Baseline:
    """Every baseline of the transaction in one query (call with the customer's profile locked)."""
    row = await repository.features(
        session,
        customer_key=facts.customer_key,
        occurred_at=facts.occurred_at,
        payee=facts.payee,
        device_id=facts.device_id,
        region=facts.region,
        ip=facts.ip,
        login_window_minutes=login_window_minutes,
    )
    return build(facts, row, risk_level)
