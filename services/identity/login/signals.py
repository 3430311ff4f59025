"""Login signals, per-account restrictions, and the risk service's opinion.

Signals are computed here from the login log and known devices; risk (when it
answers) combines them with its own models. Security decisions fail closed:
when risk cannot answer, the login is challenged with a second factor.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, SQLColumnExpression, String, Uuid, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.login.geo import Place, distance_km
from services.identity.models import Account, Device, LoginAttempt
from services.identity.runtime import Runtime

logger = logging.getLogger("identity.login")

#: Signals that on their own ask for a second factor.
CHALLENGING_SIGNALS = frozenset({"new_device", "new_region", "impossible_travel"})
DECISIONS = ("allow", "challenge", "deny")


@dataclass(frozen=True, slots=True)
class LoginContext:
    ip: str | None
    place: Place | None
    device_id: str | None
    user_agent: str | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def region(self) -> str | None:
        return self.place.region if self.place else None


@dataclass(frozen=True, slots=True)
class Assessment:
    signals: list[str]
    violations: list[str]
    risk_decision: str  # allow / challenge / deny / unavailable / disabled
    decision: str  # allow / challenge / deny
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class SignalFacts:
    """What the signals need from the database: the account's devices, recent failures, the last success."""

    devices: int
    known_device: bool
    regions: list[str]
    failures: int
    last_ip: str | None
    last_success_at: datetime | None


def signal_fact_columns(account_id: SQLColumnExpression[uuid.UUID]) -> list[ColumnElement[Any]]:
    """:class:`SignalFacts` as correlated subqueries on ``account_id``, to fold into a query that finds the
    account (the login's, so the facts cost no round trip of their own). Bind parameters: ``device_id``
    (may be None) and ``since`` (start of the recent-failures window)."""
    device_id = bindparam("device_id", type_=String())
    since = bindparam("since", type_=DateTime(timezone=True))
    last_success = (
        select(LoginAttempt.ip, LoginAttempt.occurred_at)
        .where(LoginAttempt.account_id == account_id, LoginAttempt.result == "success")
        .order_by(LoginAttempt.occurred_at.desc())
        .limit(1)
    )
    return [
        select(func.count()).where(Device.account_id == account_id).scalar_subquery().label("devices"),
        exists().where(Device.account_id == account_id, Device.device_id == device_id).label("known_device"),
        select(func.array_agg(Device.last_region.distinct()))
        .where(Device.account_id == account_id, Device.last_region.is_not(None))
        .scalar_subquery()
        .label("regions"),
        select(func.count())
        .where(
            LoginAttempt.account_id == account_id,
            LoginAttempt.result == "failure",
            LoginAttempt.occurred_at > since,
        )
        .scalar_subquery()
        .label("failures"),
        last_success.with_only_columns(LoginAttempt.ip).scalar_subquery().label("last_ip"),
        last_success.with_only_columns(LoginAttempt.occurred_at).scalar_subquery().label("last_success_at"),
    ]


def signal_fact_params(runtime: Runtime, ctx: LoginContext) -> dict[str, Any]:
    since = ctx.now - timedelta(minutes=runtime.settings.recent_failures_window_minutes)
    return {"device_id": ctx.device_id, "since": since}


def signal_facts_of(row: Mapping[Any, Any]) -> SignalFacts:
    """The facts from a result row that selected :func:`signal_fact_columns`."""
    return SignalFacts(
        devices=row["devices"] or 0,
        known_device=bool(row["known_device"]),
        regions=list(row["regions"] or ()),
        failures=row["failures"] or 0,
        last_ip=row["last_ip"],
        last_success_at=row["last_success_at"],
    )


#: Built once: a statement object keeps its cache key, so executing it again skips the expression walk.
_SIGNAL_FACTS = select(*signal_fact_columns(bindparam("account_id", type_=Uuid())))


async def signal_facts(session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext) -> SignalFacts:
    params = signal_fact_params(runtime, ctx) | {"account_id": account.id}
    return signal_facts_of((await session.execute(_SIGNAL_FACTS, params)).one()._mapping)


async def compute_signals(session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext) -> list[str]:
    return signals_from(runtime, account, ctx, await signal_facts(session, runtime, account, ctx))


def signals_from(runtime: Runtime, account: Account, ctx: LoginContext, facts: SignalFacts) -> list[str]:
    settings = runtime.settings
    signals: list[str] = []
    if facts.devices and (ctx.device_id is None or not facts.known_device):
        signals.append("new_device")
    known_regions = set(facts.regions) | ({account.home_region} - {None})
    if ctx.region and known_regions and ctx.region not in known_regions and ctx.region != "local":
        signals.append("new_region")
    if facts.last_success_at is not None and ctx.place is not None:
        previous = runtime.geo.locate(facts.last_ip)
        if previous is not None and previous.region != "local" and ctx.place.region != "local":
            hours = max((ctx.now - facts.last_success_at).total_seconds() / 3600, 1 / 60)
            if distance_km(previous, ctx.place) / hours > settings.impossible_travel_kmh:
                signals.append("impossible_travel")
    start, end = settings.odd_hours_utc
    hour = ctx.now.hour
    if (start <= hour < end) if start <= end else (hour >= start or hour < end):
        signals.append("odd_hour")
    if facts.failures >= settings.recent_failures_threshold:
        signals.append("recent_failures")
    return signals


async def restriction_violations(session: AsyncSession, account: Account, ctx: LoginContext) -> list[str]:
    """Per-account rules (set by staff, stricter for high-risk accounts)."""
    rules: dict[str, Any] = dict(account.restrictions or {})
    if account.risk_level == "high":
        rules.setdefault("known_devices_only", True)
        if account.home_region:
            rules.setdefault("allowed_regions", [account.home_region])
    violations: list[str] = []
    hours = rules.get("allowed_hours_utc")
    if isinstance(hours, list) and len(hours) == 2:
        start, end = int(hours[0]), int(hours[1])
        hour = ctx.now.hour
        inside = (start <= hour < end) if start <= end else (hour >= start or hour < end)
        if not inside:
            violations.append("outside_allowed_hours")
    regions = rules.get("allowed_regions")
    if isinstance(regions, list) and regions and ctx.region not in regions:
        violations.append("region_not_allowed")
    if rules.get("known_devices_only"):
        known = await session.scalar(
            select(func.count()).where(Device.account_id == account.id, Device.device_id == (ctx.device_id or ""))
        )
        if not known:
            violations.append("unknown_device")
    return violations


async def ask_risk(runtime: Runtime, account: Account, ctx: LoginContext, signals: list[str]) -> tuple[str, list[str]]:
    """Risk's decision, or ``unavailable`` when it does not answer properly (the caller fails closed)."""
    settings = runtime.settings
    if not settings.risk_scoring_enabled:
        return "disabled", []
    payload = {
        "account_id": str(account.id),
        "account_kind": account.kind,
        "risk_level": account.risk_level,
        "ip": ctx.ip,
        "region": ctx.region,
        "device_id": ctx.device_id,
        "signals": signals,
        "occurred_at": ctx.now.isoformat(),
    }
    try:
        response = await asyncio.wait_for(
            runtime.client.request("POST", settings.risk_score_path, json=payload, retries=0),
            timeout=settings.risk_timeout_seconds,
        )
    except Exception:  # unreachable, timed out, no service token: the answer is "no answer"
        logger.warning("risk did not answer a login score; challenging")
        return "unavailable", ["risk_unavailable"]
    if response.status_code != 200:
        return "unavailable", ["risk_unavailable"]
    try:
        body = response.json()
        decision = str(body["decision"])
        reasons = [str(r) for r in body.get("reasons", [])][:10]
    except (ValueError, KeyError, TypeError):
        return "unavailable", ["risk_unavailable"]
    if decision not in DECISIONS:
        return "unavailable", ["risk_unavailable"]
    return decision, reasons


async def assess(
    session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext, facts: SignalFacts | None = None
) -> Assessment:
    """Signals, restrictions and risk's opinion; ``facts`` when the caller already read them with the account."""
    if facts is None:
        facts = await signal_facts(session, runtime, account, ctx)
    signals = signals_from(runtime, account, ctx, facts)
    violations = await restriction_violations(session, account, ctx)
    risk_decision, risk_reasons = await ask_risk(runtime, account, ctx, signals)
    # A medium-risk account (risk's judgement, internal/accounts/{id}/risk-level) is challenged on any signal.
    challenging = CHALLENGING_SIGNALS if account.risk_level != "medium" else frozenset(signals)
    # Risk names some of identity's own signals again (new_device ...): each reason is said once.
    reasons = list(dict.fromkeys([s for s in signals if s in challenging] + violations + risk_reasons))
    on_violation = str((account.restrictions or {}).get("on_violation", "challenge"))
    if risk_decision == "deny" or (violations and on_violation == "deny"):
        decision = "deny"
    elif reasons or risk_decision in ("challenge", "unavailable"):
        decision = "challenge"
    else:
        decision = "allow"
    return Assessment(signals, violations, risk_decision, decision, reasons)
