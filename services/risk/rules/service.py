"""Rule set changes: proposed, backtested, run in shadow, approved by a second person, then live.

A change is a maker-checker approval in permissions (operation ``risk.ruleset_change``, payload
``{"version", "rules_hash"}``); risk executes the approval when a staff member activates the
version, so what goes live is exactly what was approved.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.permissions import PermissionClient, payload_hash
from services.risk.baselines import repository as baselines
from services.risk.baselines.service import TransactionFacts, build
from services.risk.config import RiskSettings
from services.risk.errors import RuleSetNotFound, RuleSetState
from services.risk.models import RuleSet, ScoredTransaction, audit_log
from services.risk.rules import repository
from services.risk.rules.book import RuleBook
from services.risk.rules.engine import Rule, validate
from services.risk.rules.schemas import ApprovalRequest, BacktestIn, BacktestOut, Metrics, RuleSetIn, ShadowReport
from services.risk.scoring.service import combine_stored

OPERATION = "risk.ruleset_change"
FLAGGED = {"block", "freeze"}


def approval_request(row: RuleSet) -> ApprovalRequest:
    return ApprovalRequest(operation=OPERATION, payload={"version": row.version, "rules_hash": payload_hash(row.rules)})


async def propose(session: AsyncSession, body: RuleSetIn, *, actor: str) -> RuleSet:
    rules = [Rule.from_json(r.model_dump()) for r in body.rules]
    validate(rules)
    await repository.lock_rulesets(session)
    row = RuleSet(
        version=await repository.next_version(session),
        state="pending",
        shadow=False,
        rules=[r.as_json() for r in rules],
        comment=body.comment,
        created_by=actor,
    )
    session.add(row)
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        actor_kind="staff",
        action="ruleset.proposed",
        target=str(row.version),
        detail={"rules": len(rules), "rules_hash": payload_hash(row.rules)},
    )
    return row


async def _pending(session: AsyncSession, version: int) -> RuleSet:
    row = await repository.get(session, version, lock=True)
    if row is None:
        raise RuleSetNotFound(f"no rule set version {version}")
    if row.state != "pending":
        raise RuleSetState(f"rule set {version} is {row.state}")
    return row


async def activate(
    session: AsyncSession, permissions: PermissionClient, book: RuleBook, version: int, approval_id: str, *, actor: str
) -> RuleSet:
    """Execute the approval (exactly once, in permissions), then make the version live."""
    await repository.lock_rulesets(session)
    row = await _pending(session, version)
    request = approval_request(row)
    await permissions.execute_approval(approval_id, OPERATION, request.payload)
    current = await repository.live(session)
    if current is not None:
        current.state = "retired"
        await session.flush()
    row.state, row.shadow, row.approval_id, row.activated_by = "live", False, approval_id, actor
    row.activated_at = _now()
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        actor_kind="staff",
        action="ruleset.activated",
        target=str(version),
        detail={"approval_id": approval_id, "previous": current.version if current else None},
    )
    book.mark_stale()
    return row


async def set_shadow(session: AsyncSession, book: RuleBook, version: int, enabled: bool, *, actor: str) -> RuleSet:
    """Run a candidate beside the live set: its decisions are recorded and compared, never acted on."""
    await repository.lock_rulesets(session)
    row = await _pending(session, version)
    await repository.clear_shadow(session)
    row.shadow = enabled
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        actor_kind="staff",
        action="ruleset.shadow_on" if enabled else "ruleset.shadow_off",
        target=str(version),
        detail={},
    )
    book.mark_stale()
    return row


async def shadow_report(session: AsyncSession, version: int) -> ShadowReport:
    if await repository.get(session, version) is None:
        raise RuleSetNotFound(f"no rule set version {version}")
    rows = await repository.shadow_decisions(session, version)
    changed: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for row in rows:
        if row.decision != row.live_decision:
            changed[f"{row.live_decision}->{row.decision}"] += 1
            if len(examples) < 50:
                examples.append(
                    {
                        "transaction_id": row.transaction_id,
                        "live": row.live_decision,
                        "shadow": row.decision,
                        "score": row.score,
                    }
                )
    agreeing = len(rows) - sum(changed.values())
    return ShadowReport(version=version, scored=len(rows), agreeing=agreeing, changed=dict(changed), examples=examples)


async def backtest(
    session: AsyncSession, settings: RiskSettings, book: RuleBook, version: int, body: BacktestIn
) -> BacktestOut:
    """Replay stored history (in event time) through a candidate and the live set, against the labels."""
    candidate_row = await repository.get(session, version)
    if candidate_row is None:
        raise RuleSetNotFound(f"no rule set version {version}")
    live_row = await repository.live(session)
    candidate = book.compiled(candidate_row.version, [Rule.from_json(r) for r in candidate_row.rules])
    baseline = (
        (await book.active()).live
        if live_row is None
        else book.compiled(live_row.version, [Rule.from_json(r) for r in live_row.rules])
    )
    tallies = {"candidate": _Tally(), "baseline": _Tally()}
    changed: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    async for tx in repository.history(session, body.occurred_from, body.occurred_to, body.max_transactions):
        variables, probability = await _variables_of(session, settings, tx)
        new = combine_stored(settings, candidate, variables, probability)
        old = combine_stored(settings, baseline, variables, probability)
        tallies["candidate"].add(new, tx.label, settings)
        tallies["baseline"].add(old, tx.label, settings)
        if new[1] != old[1]:
            changed[f"{old[1]}->{new[1]}"] += 1
            if len(examples) < 50:
                examples.append(
                    {
                        "transaction_id": tx.transaction_id,
                        "baseline": old[1],
                        "candidate": new[1],
                        "score": new[0],
                        "label": tx.label,
                    }
                )
    return BacktestOut(
        version=version,
        baseline_version=baseline.version,
        candidate=tallies["candidate"].metrics(),
        baseline=tallies["baseline"].metrics(),
        changed_decisions=sum(changed.values()),
        changed=dict(changed),
        examples=examples,
    )


async def _variables_of(
    session: AsyncSession, settings: RiskSettings, tx: ScoredTransaction
) -> tuple[dict[str, Any], float | None]:
    """The rule variables stored at scoring time; for imported history, computed now in event time."""
    if tx.features:
        stored = dict(tx.features)
        probability = stored.pop("model_probability", None)
        return stored, probability
    facts = TransactionFacts(
        transaction_id=tx.transaction_id,
        customer_key=tx.customer_key,
        account_id=tx.account_id,
        customer_id=tx.customer_id,
        payee=tx.payee,
        amount_minor=tx.amount_minor,
        currency=tx.currency,
        occurred_at=tx.occurred_at,
        kind=tx.kind,
        channel=tx.channel,
        ip=tx.ip,
        device_id=tx.device_id,
        region=tx.region,
    )
    row = await baselines.features(
        session,
        customer_key=tx.customer_key,
        occurred_at=tx.occurred_at,
        payee=tx.payee,
        device_id=tx.device_id,
        region=tx.region,
        ip=tx.ip,
        login_window_minutes=settings.login_place_window_minutes,
    )
    return build(facts, row, "low").variables, None


class _Tally:
    def __init__(self) -> None:
        self.transactions = self.labelled = self.flagged = self.true_positives = self.frauds = 0
        self.decisions: Counter[str] = Counter()

    def add(self, outcome: tuple[float, str], label: str | None, settings: RiskSettings) -> None:
        score, decision = outcome
        flagged = decision in FLAGGED or score >= settings.alert_threshold
        self.transactions += 1
        self.decisions[decision] += 1
        self.flagged += int(flagged)
        if label is not None:
            self.labelled += 1
            fraud = label == "fraud"
            self.frauds += int(fraud)
            self.true_positives += int(fraud and flagged)

    def metrics(self) -> Metrics:
        # Precision over every flag: an unlabelled flag counts as not confirmed.
        flagged_labelled = self.flagged
        return Metrics(
            transactions=self.transactions,
            labelled=self.labelled,
            flagged=self.flagged,
            true_positives=self.true_positives,
            precision=round(self.true_positives / flagged_labelled, 6) if flagged_labelled else None,
            recall=round(self.true_positives / self.frauds, 6) if self.frauds else None,
            decisions=dict(self.decisions),
        )


def _now() -> datetime:
    return datetime.now(UTC)
