"""Scoring transactions: contract shape, idempotency, event time, rules, decisions and their effects."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from services.risk.learning.features import FeatureInput, ModelVerdict
from tests.risk.conftest import T0, Risk, minutes, new_id


async def test_a_small_first_transaction_is_allowed_with_the_contract_shape(risk: Risk) -> None:
    body = await risk.score(amount_minor=5_000)
    assert set(body) == {"transaction_id", "score", "decision", "reasons", "model_version", "ruleset_version"}
    assert body["decision"] == "allow"
    assert 0 <= body["score"] < 40
    assert body["model_version"] is None
    assert body["ruleset_version"] == 1


async def test_a_repeat_answers_the_first_decision_and_is_not_scored_twice(risk: Risk) -> None:
    customer = new_id()
    tx = new_id()
    first = await risk.score(transaction_id=tx, customer_id=customer, amount_minor=6_000_000)
    # The same id again, even with other numbers: the first decision comes back.
    again = await risk.score(transaction_id=tx, customer_id=customer, amount_minor=1)
    assert again == first
    # Concurrent repeats of a new id: one score, one answer.
    tx2 = new_id()
    answers = await asyncio.gather(*(risk.score(transaction_id=tx2, customer_id=customer) for _ in range(6)))
    assert all(a == answers[0] for a in answers)
    # Only two transactions count in the customer's baseline.
    later = await risk.score(customer_id=customer, occurred_at=T0 + minutes(5))
    velocity = await risk.score(customer_id=customer, occurred_at=T0 + minutes(6))
    assert later["transaction_id"] != velocity["transaction_id"]
    async with risk.sessionmaker() as session:
        from sqlalchemy import func, select

        from services.risk.models import ScoredTransaction

        count = await session.scalar(
            select(func.count()).select_from(ScoredTransaction).where(ScoredTransaction.customer_id == customer)
        )
    assert count == 4


async def test_concurrent_scores_of_one_customer_all_count(risk: Risk) -> None:
    """Velocity sees every earlier transaction even when they are scored at the same moment."""
    customer = new_id()
    await asyncio.gather(*(risk.score(customer_id=customer, occurred_at=T0 + timedelta(seconds=i)) for i in range(6)))
    body = await risk.score(customer_id=customer, occurred_at=T0 + minutes(10))
    assert "velocity_1h" in {r["code"] for r in body["reasons"]}


async def test_windows_are_in_event_time_whatever_the_arrival_order(risk: Risk) -> None:
    customer = new_id()
    # A transaction arriving late (occurred before the others) sees only what preceded it.
    for i in range(5):
        await risk.score(customer_id=customer, occurred_at=T0 + minutes(10 + i))
    late = await risk.score(customer_id=customer, occurred_at=T0)
    assert "velocity_1h" not in {r["code"] for r in late["reasons"]}
    # Two hours later the window has passed.
    after = await risk.score(customer_id=customer, occurred_at=T0 + timedelta(hours=3))
    assert "velocity_1h" not in {r["code"] for r in after["reasons"]}
    inside = await risk.score(customer_id=customer, occurred_at=T0 + minutes(30))
    assert "velocity_1h" in {r["code"] for r in inside["reasons"]}


async def test_login_in_one_place_then_a_transfer_from_another_within_15_minutes_steps_up(risk: Risk) -> None:
    """R-II.2.2: a login in Beijing, a transfer from Shanghai 10 minutes later -> step_up."""
    customer = new_id()
    await risk.score(customer_id=customer, occurred_at=T0 - timedelta(days=3), region="CN-31")
    await risk.login(account_id=customer, region="CN-11", occurred_at=T0.isoformat())
    body = await risk.score(customer_id=customer, occurred_at=T0 + minutes(10), region="CN-31", amount_minor=500)
    assert body["decision"] == "step_up"
    assert "login_elsewhere" in {r["code"] for r in body["reasons"]}
    # Twenty minutes after the login the same transfer is not stepped up for it.
    calm = await risk.score(customer_id=customer, occurred_at=T0 + minutes(20), region="CN-31", amount_minor=500)
    assert "login_elsewhere" not in {r["code"] for r in calm["reasons"]}
    # The same place: nothing to confirm.
    same = new_id()
    await risk.login(account_id=same, region="CN-31", occurred_at=T0.isoformat())
    assert (await risk.score(customer_id=same, occurred_at=T0 + minutes(5), region="CN-31"))["decision"] == "allow"


async def test_crypto_to_a_blocked_payee_above_the_limit_freezes_and_acts_through_the_outbox(risk: Risk) -> None:
    customer = new_id()
    payee = "wallet-" + uuid.uuid4().hex[:8]
    listed = await risk.client.post(
        "/internal/lists/payee/entries",
        json={"value": payee, "verdict": "block", "reason": "mule wallet"},
        headers=risk.service("incidents"),
    )
    assert listed.status_code == 201, listed.text
    body = await risk.score(customer_id=customer, payee=payee, kind="crypto_withdrawal", amount_minor=6_000_000)
    assert body["score"] >= 90
    assert body["decision"] == "freeze"
    codes = {r["code"] for r in body["reasons"]}
    assert {"blocked_payee", "crypto_withdrawal", "single_amount_limit"} <= codes
    tx = body["transaction_id"]
    rows = {r["idempotency_key"]: r for r in await risk.outbox_rows(f"%{tx}%")}
    freeze = rows[f"risk-freeze:{tx}"]
    assert freeze["path"] == f"/v1/identity/internal/accounts/{customer}/freeze"
    report = rows[f"risk-report:{tx}"]
    assert report["path"] == "/v1/incidents/internal/reports"
    assert report["payload"]["type"] == "fraudulent_transaction"
    assert report["payload"]["reference"] == {"kind": "transaction", "id": tx}
    alerts = await risk.client.get("/staff/alerts", params={"status": "open"}, headers=risk.staff())
    assert alerts.status_code == 200, alerts.text
    assert tx in {a["transaction_id"] for a in alerts.json()["alerts"]}


async def test_a_block_warns_the_customer_and_raises_the_risk_level(risk: Risk) -> None:
    customer = new_id()
    body = await risk.score(customer_id=customer, kind="crypto_withdrawal", amount_minor=6_000_000)
    assert body["decision"] == "block", body
    tx = body["transaction_id"]
    rows = await risk.outbox_rows(f"risk-notify:{tx}")
    assert rows
    assert rows[0]["payload"]["event"] == "transaction_blocked"
    levels = await risk.outbox_rows(f"risk-level:{customer}:%")
    assert levels
    assert levels[-1]["payload"]["level"] == "high"
    assert levels[-1]["method"] == "PUT"


class FakeModel:
    version = "fake-1"

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.seen: list[FeatureInput] = []

    def predict(self, features: FeatureInput) -> ModelVerdict:
        self.seen.append(features)
        return ModelVerdict(self.probability, (("amount_minor", 0.4), ("new_payee", 0.1)))


class BrokenModel:
    version = "broken-1"

    def predict(self, features: FeatureInput) -> ModelVerdict:
        raise RuntimeError("model file unreadable")


async def test_the_model_adds_its_probability_and_names_its_top_features(risk: Risk) -> None:
    customer = new_id()
    payee = "shop-" + uuid.uuid4().hex[:6]
    await risk.score(customer_id=customer, payee=payee, occurred_at=T0 - timedelta(hours=2), amount_minor=700)
    model = FakeModel(0.5)
    risk.model_source.scorer = model
    body = await risk.score(customer_id=customer, payee=payee, amount_minor=800)
    assert body["model_version"] == "fake-1"
    assert body["score"] == 50.0
    assert body["decision"] == "step_up"
    codes = [r["code"] for r in body["reasons"]]
    assert "model" in codes
    assert "model_feature:amount_minor" in codes
    seen = model.seen[-1]
    assert seen.customer["1d"].count == 1
    assert seen.customer["1d"].amount_minor == 700
    assert seen.customer["1h"].count == 0
    assert seen.new_payee is False
    assert seen.seconds_since_last == 7200.0
    assert seen.payee["30d"].count == 1
    # A higher probability with the same rules ranks higher.
    risk.model_source.scorer = FakeModel(0.6)
    higher = await risk.score(customer_id=customer, payee=payee, amount_minor=800, occurred_at=T0 + minutes(1))
    assert higher["score"] > body["score"]


async def test_a_failing_model_leaves_the_rules_to_answer(risk: Risk) -> None:
    risk.model_source.scorer = BrokenModel()
    body = await risk.score(kind="crypto_withdrawal", amount_minor=6_000_000)
    assert body["model_version"] is None
    assert body["decision"] == "block"


async def test_scoring_needs_the_score_scope(risk: Risk) -> None:
    from tests.risk.conftest import transaction

    response = await risk.client.post(
        "/internal/transactions/score", json=transaction(), headers=risk.service("vault", scope="risk:signals")
    )
    assert response.status_code == 403
    bad = await risk.client.post(
        "/internal/transactions/score", json=transaction(currency="yuan"), headers=risk.service()
    )
    assert bad.status_code == 422


async def test_a_first_step_up_makes_the_customer_medium_risk(risk: Risk) -> None:
    customer = new_id()
    await risk.score(customer_id=customer, occurred_at=T0 - timedelta(days=1), region="CN-31")
    await risk.login(account_id=customer, region="CN-11", occurred_at=T0.isoformat())
    body = await risk.score(customer_id=customer, occurred_at=T0 + minutes(1), region="CN-31")
    assert body["decision"] == "step_up"
    levels = await risk.outbox_rows(f"risk-level:{customer}:%")
    assert [r["payload"]["level"] for r in levels] == ["medium"]
