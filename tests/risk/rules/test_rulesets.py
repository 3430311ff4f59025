"""Rule set changes: proposed, validated, shadowed, backtested, approved by a second person, live."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tests.risk.conftest import T0, Risk, new_id

LIVE_RULES: list[dict[str, Any]] = []


async def rules_of(risk: Risk, version: int) -> list[dict[str, Any]]:
    body: dict[str, Any] = (await risk.client.get(f"/staff/rulesets/{version}", headers=risk.staff())).json()
    rules: list[dict[str, Any]] = body["rules"]
    return rules


async def test_a_rule_that_does_not_compile_or_answer_a_bool_is_refused(risk: Risk) -> None:
    for expression in ("amount_minor >", "amount_minor + 1", "no_such_variable > 1"):
        response = await risk.client.post(
            "/staff/rulesets",
            json={"rules": [{"code": "bad", "expression": expression, "weight": 0.5}]},
            headers=risk.staff(),
        )
        assert response.status_code == 400, expression
        assert response.json()["code"] == "invalid_rule"


async def test_a_candidate_is_backtested_shadowed_and_goes_live_only_with_an_approval(risk: Risk) -> None:
    tag = uuid.uuid4().hex[:6]
    # History: a labelled fraud to a card payee and a genuine payment.
    fraud = await risk.score(kind="card_payment", payee=f"m-{tag}", amount_minor=300_000, occurred_at=T0)
    genuine = await risk.score(kind="card_payment", payee=f"g-{tag}", amount_minor=1_000, occurred_at=T0)
    await risk.client.post(
        "/internal/labels",
        json={
            "labels": [
                {"transaction_id": fraud["transaction_id"], "label": "fraud", "source": "chargeback"},
                {"transaction_id": genuine["transaction_id"], "label": "genuine", "source": "core"},
            ]
        },
        headers=risk.service(),
    )
    candidate_rules = [
        *await rules_of(risk, 1),
        {
            "code": "large_card_payment",
            "expression": 'kind == "card_payment" && amount_minor >= 200000',
            "weight": 0.75,
            "category": "transaction",
            "detail": "a large card payment",
        },
    ]
    maker = new_id()
    proposed = await risk.client.post(
        "/staff/rulesets",
        json={"rules": candidate_rules, "comment": "large card payments"},
        headers=risk.staff(maker),
    )
    assert proposed.status_code == 201, proposed.text
    version = proposed.json()["version"]
    assert proposed.json()["state"] == "pending"
    request = proposed.json()["approval_request"]
    assert request["operation"] == "risk.ruleset_change"
    assert request["payload"]["version"] == version

    backtest = await risk.client.post(
        f"/staff/rulesets/{version}/backtests",
        json={
            "occurred_from": (T0 - timedelta(minutes=1)).isoformat(),
            "occurred_to": (T0 + timedelta(minutes=1)).isoformat(),
        },
        headers=risk.staff(),
    )
    assert backtest.status_code == 200, backtest.text
    result = backtest.json()
    assert result["candidate"]["true_positives"] >= result["baseline"]["true_positives"] + 1
    assert result["candidate"]["recall"] is not None
    assert fraud["transaction_id"] in {e["transaction_id"] for e in result["examples"]}

    shadow = await risk.client.post(f"/staff/rulesets/{version}/shadow", json={"enabled": True}, headers=risk.staff())
    assert shadow.json()["shadow"] is True
    live_answer = await risk.score(kind="card_payment", amount_minor=250_000, occurred_at=T0 + timedelta(days=1))
    assert live_answer["decision"] == "allow"  # the shadow never acts
    assert live_answer["ruleset_version"] == 1
    report = (await risk.client.get(f"/staff/rulesets/{version}/shadow-report", headers=risk.staff())).json()
    assert report["changed"].get("allow->block", 0) >= 1

    approval_id = str(uuid.uuid4())
    refused = await risk.client.post(
        f"/staff/rulesets/{version}/activation", json={"approval_id": approval_id}, headers=risk.staff()
    )
    assert refused.status_code == 409  # not approved by a second person
    risk.permissions.approved.add(approval_id)
    activated = await risk.client.post(
        f"/staff/rulesets/{version}/activation", json={"approval_id": approval_id}, headers=risk.staff()
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["state"] == "live"
    assert risk.permissions.executed[approval_id][0] == "risk.ruleset_change"
    now_live = await risk.score(kind="card_payment", amount_minor=250_000, occurred_at=T0 + timedelta(days=1))
    assert now_live["decision"] == "block"
    assert now_live["ruleset_version"] == version
    versions = (await risk.client.get("/staff/rulesets", headers=risk.staff())).json()["rulesets"]
    assert {v["version"]: v["state"] for v in versions}[1] == "retired"


async def test_changing_rules_needs_a_second_factor_session(risk: Risk) -> None:
    response = await risk.client.post(
        "/staff/rulesets",
        json={"rules": [{"code": "x", "expression": "amount_minor > 1", "weight": 0.1}]},
        headers=risk.staff(acr="aal1", amr=("pwd",)),
    )
    assert response.status_code == 403
