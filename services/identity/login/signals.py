"""Login signals, per-account restrictions, and the risk service's opinion.

Signals are computed here from the login log and known devices; risk (when it
answers) combines them with its own models. Security decisions fail closed:
when risk cannot answer, the login is challenged with a second factor.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, column, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.login.geo import Place, distance_km
from services.identity.models import Account, Device
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


#: Everything the signals need from the database in one round trip: the
#: account's devices (how many, whether this one is among them, their regions),
#: recent failures and the last successful login. A constant statement, so
#: SQLAlchemy's compiled cache answers it without walking an expression tree.
_SIGNAL_FACTS = text(
    """
    SELECT
        (SELECT count(*) FROM identity.device WHERE account_id = :account_id) AS devices,
        EXISTS (
            SELECT 1 FROM identity.device WHERE account_id = :account_id AND device_id = :device_id
        ) AS known_device,
        ARRAY(
            SELECT DISTINCT last_region FROM identity.device
            WHERE account_id = :account_id AND last_region IS NOT NULL
        ) AS regions,
        (
            SELECT count(*) FROM identity.login_attempt
            WHERE account_id = :account_id AND result = 'failure' AND occurred_at > :since
        ) AS failures,
        last_success.ip,
        last_success.occurred_at
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT ip, occurred_at FROM identity.login_attempt
        WHERE account_id = :account_id AND result = 'success'
        ORDER BY occurred_at DESC LIMIT 1
    ) AS last_success ON true
    """
).columns(
    column("devices", Integer()),
    column("known_device", Boolean()),
    column("regions", ARRAY(String())),
    column("failures", Integer()),
    column("ip", String()),
    column("occurred_at", DateTime(timezone=True)),
)


async def compute_signals(session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext) -> list[str]:
    settings = runtime.settings
    signals: list[str] = []
    since = ctx.now - timedelta(minutes=settings.recent_failures_window_minutes)
    facts = (
        await session.execute(_SIGNAL_FACTS, {"account_id": account.id, "device_id": ctx.device_id, "since": since})
    ).one()
    if facts.devices and (ctx.device_id is None or not facts.known_device):
        signals.append("new_device")
    known_regions = set(facts.regions or ()) | ({account.home_region} - {None})
    if ctx.region and known_regions and ctx.region not in known_regions and ctx.region != "local":
        signals.append("new_region")
    if facts.occurred_at is not None and ctx.place is not None:
        previous = runtime.geo.locate(facts.ip)
        if previous is not None and previous.region != "local" and ctx.place.region != "local":
            hours = max((ctx.now - facts.occurred_at).total_seconds() / 3600, 1 / 60)
            if distance_km(previous, ctx.place) / hours > settings.impossible_travel_kmh:
                signals.append("impossible_travel")
    start, end = settings.odd_hours_utc
    hour = ctx.now.hour
    if (start <= hour < end) if start <= end else (hour >= start or hour < end):
        signals.append("odd_hour")
    if (facts.failures or 0) >= settings.recent_failures_threshold:
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


async def assess(session: AsyncSession, runtime: Runtime, account: Account, ctx: LoginContext) -> Assessment:
    signals = await compute_signals(session, runtime, account, ctx)
    violations = await restriction_violations(session, account, ctx)
    risk_decision, risk_reasons = await ask_risk(runtime, account, ctx, signals)
    reasons = [s for s in signals if s in CHALLENGING_SIGNALS] + violations + risk_reasons
    on_violation = str((account.restrictions or {}).get("on_violation", "challenge"))
    if risk_decision == "deny" or (violations and on_violation == "deny"):
        decision = "deny"
    elif reasons or risk_decision in ("challenge", "unavailable"):
        decision = "challenge"
    else:
        decision = "allow"
    return Assessment(signals, violations, risk_decision, decision, reasons)
