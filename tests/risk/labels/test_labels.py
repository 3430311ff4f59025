"""Labels feed the baselines, counted only from when they were known."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.risk.conftest import T0, Risk, new_id


async def test_a_fraud_label_marks_the_payee_only_from_when_it_was_known(risk: Risk) -> None:
    payee = "mule-" + uuid.uuid4().hex[:8]
    first = await risk.score(payee=payee, occurred_at=T0)
    labelled_at = T0 + timedelta(days=2)
    response = await risk.client.post(
        "/internal/labels",
        json={
            "labels": [
                {
                    "transaction_id": first["transaction_id"],
                    "label": "fraud",
                    "source": "chargeback",
                    "labelled_at": labelled_at.isoformat(),
                },
                {"transaction_id": "never-seen", "label": "genuine", "source": "x"},
            ]
        },
        headers=risk.service(),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"applied": 1, "unknown": ["never-seen"]}
    # Another customer pays the same payee a day later: the label was not known yet.
    before = await risk.score(payee=payee, occurred_at=T0 + timedelta(days=1))
    assert "payee_fraud" not in {r["code"] for r in before["reasons"]}
    after = await risk.score(payee=payee, occurred_at=T0 + timedelta(days=3))
    assert "payee_fraud" in {r["code"] for r in after["reasons"]}


async def test_a_fraud_label_raises_the_customers_risk_level(risk: Risk) -> None:
    customer = new_id()
    tx = await risk.score(customer_id=customer)
    await risk.client.post(
        "/internal/labels",
        json={"labels": [{"transaction_id": tx["transaction_id"], "label": "fraud", "source": "core"}]},
        headers=risk.service(),
    )
    levels = await risk.outbox_rows(f"risk-level:{customer}:%")
    assert levels[-1]["payload"]["level"] == "high"
    assert levels[-1]["path"] == f"/v1/identity/internal/accounts/{customer}/risk-level"


async def test_labels_need_the_labels_scope(risk: Risk) -> None:
    response = await risk.client.post(
        "/internal/labels",
        json={"labels": [{"transaction_id": "t", "label": "fraud", "source": "x"}]},
        headers=risk.service("vault", scope="risk:score"),
    )
    assert response.status_code == 403
