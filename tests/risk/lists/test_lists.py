"""Shared lists: idempotent adds, who added what when, removal, import and export, effect on scoring."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from tests.risk.conftest import T0, Risk, new_id


async def test_a_service_adds_an_entry_once_and_staff_see_who_added_it(risk: Risk) -> None:
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    body = {"value": ip, "verdict": "block", "reason": "botnet", "reference": "INC-1"}
    first = await risk.client.post("/internal/lists/ip/entries", json=body, headers=risk.service("incidents"))
    assert first.status_code == 201, first.text
    again = await risk.client.post("/internal/lists/ip/entries", json=body, headers=risk.service("incidents"))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listed = await risk.client.get("/staff/lists/ip", headers=risk.staff())
    entry = next(e for e in listed.json()["entries"] if e["value"] == ip)
    assert entry["added_by"] == "incidents"
    assert entry["reference"] == "INC-1"


async def test_list_writes_need_the_lists_scope_and_a_known_list(risk: Risk) -> None:
    body = {"value": "x", "verdict": "block", "reason": "r"}
    denied = await risk.client.post(
        "/internal/lists/ip/entries", json=body, headers=risk.service("vault", scope="risk:signals")
    )
    assert denied.status_code == 403
    unknown = await risk.client.post("/internal/lists/email/entries", json=body, headers=risk.service())
    assert unknown.status_code == 422


async def test_import_and_export_in_csv_and_json_round_trip(risk: Risk) -> None:
    tag = uuid.uuid4().hex[:6]
    csv_body = f"value,verdict,reason\nphish-{tag}.example.,block,kit seen\nPHISH2-{tag}.example,block,kit\n"
    imported = await risk.client.post(
        "/staff/lists/phishing_domain/imports",
        params={"format": "csv"},
        content=csv_body,
        headers={**risk.staff(), "content-type": "text/plain"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"added": 2, "already_listed": 0}
    exported = await risk.client.get(
        "/staff/lists/phishing_domain/export", params={"format": "json"}, headers=risk.staff()
    )
    values = {e["value"] for e in exported.json()["entries"]}
    assert {f"phish-{tag}.example", f"phish2-{tag}.example"} <= values  # normalised
    again = await risk.client.post(
        "/staff/lists/phishing_domain/imports",
        params={"format": "json"},
        content=json.dumps(exported.json()),
        headers={**risk.staff(), "content-type": "text/plain"},
    )
    assert again.json()["added"] == 0
    csv_out = await risk.client.get(
        "/staff/lists/phishing_domain/export", params={"format": "csv"}, headers=risk.staff()
    )
    assert csv_out.text.startswith("value,verdict,reason")
    bad = await risk.client.post(
        "/staff/lists/ip/imports",
        params={"format": "csv"},
        content="value,verdict,reason\n1.2.3.4,maybe,x\n",
        headers={**risk.staff(), "content-type": "text/plain"},
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_import"


async def test_a_removed_block_no_longer_counts_and_an_allowed_payee_is_not_new(risk: Risk) -> None:
    device = "dev-" + uuid.uuid4().hex[:8]
    added = await risk.client.post(
        "/staff/lists/device/entries",
        json={"value": device, "verdict": "block", "reason": "emulator farm"},
        headers=risk.staff(),
    )
    assert (await risk.score(device_id=device))["decision"] in {"block", "freeze"}
    removed = await risk.client.post(
        f"/staff/lists/device/entries/{added.json()['id']}/removal",
        json={"reason": "false positive"},
        headers=risk.staff(),
    )
    assert removed.status_code == 200
    assert removed.json()["removed_at"] is not None
    assert (await risk.score(device_id=device))["decision"] == "allow"
    # An allow-listed payee (a utility) is never "new".
    customer, payee = new_id(), "utility-" + uuid.uuid4().hex[:6]
    await risk.score(customer_id=customer, occurred_at=T0 - timedelta(days=1))
    before = await risk.score(customer_id=customer, payee=payee)
    assert "new_payee" in {r["code"] for r in before["reasons"]}
    await risk.client.post(
        "/staff/lists/payee/entries",
        json={"value": payee, "verdict": "allow", "reason": "utility"},
        headers=risk.staff(),
    )
    after = await risk.score(customer_id=customer, payee="utility-other")
    assert "new_payee" in {r["code"] for r in after["reasons"]}
    allowed = await risk.score(customer_id=customer, payee=payee)
    assert "new_payee" not in {r["code"] for r in allowed["reasons"]}


async def test_paying_a_merchant_on_a_phishing_domain_is_blocked(risk: Risk) -> None:
    domain = f"bank-verify-{uuid.uuid4().hex[:6]}.example"
    await risk.client.post(
        "/internal/lists/phishing_domain/entries",
        json={"value": domain, "verdict": "block", "reason": "phishing kit"},
        headers=risk.service("incidents"),
    )
    body = await risk.score(payee=f"https://{domain.upper()}/pay?id=1", kind="card_payment")
    assert "phishing_payee" in {r["code"] for r in body["reasons"]}
    assert body["decision"] in {"block", "freeze"}
    clean = await risk.score(payee="https://shop.example/pay", kind="card_payment")
    assert "phishing_payee" not in {r["code"] for r in clean["reasons"]}
