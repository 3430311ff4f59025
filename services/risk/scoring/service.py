"""Scoring: baselines + rules + model -> a score with reasons, a decision, and its effects.

The score is a noisy-OR of the model's fraud probability and the weights of
the rules that fired: ``100 * (1 - (1 - p) * prod(1 - w_i))``. For a fixed set
of fired rules it is strictly increasing in ``p``, so the model's ranking is
kept, and every rule adds evidence without ever passing 100.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.errors import ServiceUnavailable
from services.risk.baselines.service import Baseline, TransactionFacts, baseline_of, build, customer_key_of, lock
from services.risk.config import RiskSettings
from services.risk.decisions import service as decisions
from services.risk.deps import ModelSource
from services.risk.learning.features import ModelScorer
from services.risk.models import LoginEvent
from services.risk.rules.book import RuleBook
from services.risk.rules.defaults import DEFAULT_RULES
from services.risk.rules.engine import CompiledRuleSet, Hit
from services.risk.scoring import repository
from services.risk.scoring.schemas import Decision, LoginDecision, LoginIn, LoginScore, TransactionIn, TransactionScore

logger = logging.getLogger("risk.scoring")

ORDER = {Decision.allow: 0, Decision.step_up: 1, Decision.block: 2, Decision.freeze: 3}
FALLBACK_RULES = CompiledRuleSet(0, DEFAULT_RULES)


@dataclass(slots=True)
class Verdict:
    score: float
    decision: Decision
    reasons: list[dict[str, Any]]
    hits: list[Hit]
    model_version: str | None
    ruleset_version: int
    category: str
    model_probability: float | None = None
    top_features: list[tuple[str, float]] = field(default_factory=list)


def noisy_or(probability: float | None, weights: list[float]) -> float:
    keep = 1.0 - min(max(probability or 0.0, 0.0), 1.0)
    for weight in weights:
        keep *= 1.0 - weight
    return round(100.0 * (1.0 - keep), 4)


def decision_for(settings: RiskSettings, score: float, floor: Decision = Decision.allow) -> Decision:
    if score >= settings.freeze_threshold:
        band = Decision.freeze
    elif score >= settings.block_threshold:
        band = Decision.block
    elif score >= settings.step_up_threshold:
        band = Decision.step_up
    else:
        band = Decision.allow
    return band if ORDER[band] >= ORDER[floor] else floor


def floor_of(hits: list[Hit]) -> Decision:
    """The strictest decision floor among the rules that fired."""
    floor = Decision.allow
    for hit in hits:
        hit_floor = Decision(hit.rule.min_decision)
        if ORDER[hit_floor] > ORDER[floor]:
            floor = hit_floor
    return floor


def combine_stored(
    settings: RiskSettings, rules: CompiledRuleSet, variables: dict[str, Any], probability: float | None
) -> tuple[float, str]:
    """Score and decision of stored variables under a rule set (backtests; same arithmetic as live)."""
    hits = rules.evaluate(variables)
    score = noisy_or(probability, [h.rule.weight for h in hits])
    return score, decision_for(settings, score, floor_of(hits)).value


def judge(settings: RiskSettings, rules: CompiledRuleSet, model: ModelScorer | None, baseline: Baseline) -> Verdict:
    """Evaluate the rules and the model on one transaction's baseline (pure; no I/O)."""
    hits = sorted(rules.evaluate(baseline.variables), key=lambda h: h.rule.weight, reverse=True)
    probability: float | None = None
    top: list[tuple[str, float]] = []
    model_version: str | None = None
    if model is not None:
        try:
            verdict = model.predict(baseline.features)
            probability, top, model_version = verdict.probability, list(verdict.top_features[:3]), model.version
        except Exception:  # the model failing leaves the rules to answer
            logger.exception("model %s failed; scoring with rules only", getattr(model, "version", "?"))
    score = noisy_or(probability, [h.rule.weight for h in hits])
    floor = floor_of(hits)
    reasons = [h.reason() for h in hits]
    if probability is not None:
        named = ", ".join(f"{name} ({value:+.3f})" for name, value in top) or "none"
        reasons.append(
            {
                "code": "model",
                "detail": f"model {model_version}: p={probability:.4f}; top features: {named}",
                "weight": round(probability, 6),
            }
        )
        reasons.extend(
            {"code": f"model_feature:{name}", "detail": "model feature", "weight": round(value, 6)}
            for name, value in top
        )
    category = hits[0].rule.category if hits else "transaction"
    return Verdict(
        score=score,
        decision=decision_for(settings, score, floor),
        reasons=reasons,
        hits=hits,
        model_version=model_version,
        ruleset_version=rules.version,
        category=category,
        model_probability=probability,
        top_features=top,
    )


def facts_of(body: TransactionIn) -> TransactionFacts:
    return TransactionFacts(
        transaction_id=body.transaction_id,
        customer_key=customer_key_of(body.customer_id, body.account_id),
        account_id=body.account_id,
        customer_id=body.customer_id,
        payee=body.payee,
        amount_minor=body.amount_minor,
        currency=body.currency,
        occurred_at=body.occurred_at.astimezone(UTC),
        kind=body.kind,
        channel=body.channel,
        ip=body.ip,
        device_id=body.device_id,
        region=body.region,
        session_id=body.session_id,
        approval_id=str(body.approval_id) if body.approval_id is not None else None,
    )


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError | ServiceUnavailable):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def score_transaction(
    sessions: async_sessionmaker[AsyncSession],
    settings: RiskSettings,
    rulebook: RuleBook,
    models: ModelSource,
    body: TransactionIn,
) -> TransactionScore:
    """Score once per transaction id; a repeat (even a concurrent one) answers the first decision."""
    facts = facts_of(body)
    model = models.current()
    try:
        active = await rulebook.active()
        async with sessions() as session, session.begin():
            risk_level, existing = await lock(session, facts)
            if existing is not None:
                return TransactionScore.of(existing)
            baseline = await baseline_of(
                session, facts, risk_level, login_window_minutes=settings.login_place_window_minutes
            )
            verdict = judge(settings, active.live, model, baseline)
            if not await repository.insert_scored(session, _row(facts, verdict, baseline)):
                await session.rollback()
                return await _first(sessions, facts.transaction_id)
            if active.shadow is not None:
                shadow = judge(settings, active.shadow, model, baseline)
                await repository.record_shadow(
                    session,
                    {
                        "transaction_id": facts.transaction_id,
                        "ruleset_version": active.shadow.version,
                        "score": shadow.score,
                        "decision": shadow.decision.value,
                        "live_decision": verdict.decision.value,
                        "reasons": shadow.reasons,
                    },
                )
            await decisions.act(session, settings, facts, verdict, risk_level)
    except Exception as exc:
        if not _unavailable(exc):
            raise
        logger.error("state store unavailable (%s: %s); answering from the transaction alone", type(exc).__name__, exc)
        return _fallback(settings, rulebook.last_known() or FALLBACK_RULES, facts)
    return TransactionScore(
        transaction_id=facts.transaction_id,
        score=verdict.score,
        decision=verdict.decision,
        reasons=verdict.reasons,
        model_version=verdict.model_version,
        ruleset_version=verdict.ruleset_version,
    )


async def _first(sessions: async_sessionmaker[AsyncSession], transaction_id: str) -> TransactionScore:
    async with sessions() as session:
        row = await repository.first_decision(session, transaction_id)
    assert row is not None
    return TransactionScore.of(row)


def _row(facts: TransactionFacts, verdict: Verdict, baseline: Baseline) -> dict[str, Any]:
    return {
        "transaction_id": facts.transaction_id,
        "customer_key": facts.customer_key,
        "account_id": facts.account_id,
        "customer_id": facts.customer_id,
        "payee": facts.payee,
        "amount_minor": facts.amount_minor,
        "currency": facts.currency,
        "occurred_at": facts.occurred_at,
        "kind": facts.kind,
        "channel": facts.channel,
        "ip": facts.ip,
        "device_id": facts.device_id,
        "region": facts.region,
        "session_id": facts.session_id,
        "approval_id": facts.approval_id,
        "source": "scored",
        "score": verdict.score,
        "decision": verdict.decision.value,
        "reasons": verdict.reasons,
        "model_version": verdict.model_version,
        "ruleset_version": verdict.ruleset_version,
        "features": {**baseline.variables, "model_probability": verdict.model_probability},
    }


def _fallback(settings: RiskSettings, rules: CompiledRuleSet, facts: TransactionFacts) -> TransactionScore:
    """No state store: the rules judge the transaction alone; never less than step-up."""
    empty: dict[str, Any] = {
        "n1h": 0,
        "a1h": 0,
        "n1d": 0,
        "a1d": 0,
        "n7d": 0,
        "a7d": 0,
        "n30d": 0,
        "a30d": 0,
        "avg30d": 0.0,
        "max30d": 0,
        "near_hour": 1,
        "declined_1h": 0,
        "prev_at": None,
        "prev_region": None,
        "login_at": None,
        "login_region": None,
        "failed_logins_1h": 0,
        "seen_payee": True,
        "seen_device": True,
        "seen_region": True,
        "customer_fraud": 0,
        "payee": None,
        "lists": None,
    }
    verdict = judge(settings, rules, None, build(facts, empty, "low"))
    decision = verdict.decision if ORDER[verdict.decision] >= ORDER[Decision.step_up] else Decision.step_up
    reasons = [*verdict.reasons, {"code": "state_unavailable", "detail": "baselines could not be read", "weight": 0.0}]
    return TransactionScore(
        transaction_id=facts.transaction_id,
        score=verdict.score,
        decision=decision,
        reasons=reasons,
        model_version=None,
        ruleset_version=None,
    )


# Logins ---------------------------------------------------------------------------------------

LOGIN_SIGNAL_WEIGHTS = {
    "new_device": 0.2,
    "new_region": 0.25,
    "impossible_travel": 0.6,
    "odd_hour": 0.1,
    "recent_failures": 0.3,
}


async def score_login(sessions: async_sessionmaker[AsyncSession], settings: RiskSettings, body: LoginIn) -> LoginScore:
    """Score a login from identity's signals, the shared lists and the account's risk level; record its place."""
    occurred_at = body.occurred_at if body.occurred_at.tzinfo else body.occurred_at.replace(tzinfo=UTC)
    reasons = [s for s in body.signals if s in LOGIN_SIGNAL_WEIGHTS]
    weights = [LOGIN_SIGNAL_WEIGHTS[s] for s in reasons]
    try:
        async with sessions() as session, session.begin():
            listed = await decisions.listed(session, ip=body.ip, device_id=body.device_id)
            level = await decisions.risk_level_of(session, body.account_id)
            for code in listed:
                reasons.append(code)
                weights.append(0.95)
            effective_level = body.risk_level if body.risk_level in {"high", "medium"} else level
            if effective_level == "high":
                reasons.append("high_risk_account")
                weights.append(0.3)
            score = noisy_or(None, weights)
            decision = LoginDecision.allow
            if score >= settings.login_deny_threshold:
                decision = LoginDecision.deny
            elif score >= settings.login_challenge_threshold:
                decision = LoginDecision.challenge
            await repository.record_login(
                session,
                LoginEvent(
                    customer_key=body.account_id,
                    occurred_at=occurred_at,
                    region=body.region,
                    ip=body.ip,
                    device_id=body.device_id,
                    signals=list(body.signals),
                    decision=decision.value,
                ),
            )
            if decision == LoginDecision.deny:
                await decisions.report_login(
                    session,
                    account_id=body.account_id,
                    occurred_at=occurred_at,
                    score=score,
                    reasons=reasons,
                    ip=body.ip,
                )
    except Exception as exc:
        if not _unavailable(exc):
            raise
        return LoginScore(decision=LoginDecision.challenge, reasons=["state_unavailable"], score=0.0)
    return LoginScore(decision=decision, reasons=reasons, score=score)
