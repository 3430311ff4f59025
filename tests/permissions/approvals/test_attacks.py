"""From the attacker's side: a beneficiary approving their own operation, payloads the database refuses."""

from __future__ import annotations

from tests.permissions.conftest import Perms


async def test_the_reader_of_an_unmasked_read_cannot_approve_it(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    reader = await perms.staff_member("compliance_officer")  # holds approval:approve and the checker role
    payload = {"reader": reader, "records": ["r1"], "fields": ["national_id"], "purpose": "kyc_review"}
    created = await perms.client.post(
        "/staff/approvals",
        json={"operation": "vault.unmasked_read", "payload": payload},
        headers=perms.staff(maker),
    )
    assert created.status_code == 201, created.text
    assert reader in created.json()["excluded_approvers"]
    refused = await perms.approve(created.json()["id"], reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "approver_excluded"
    inbox = await perms.client.get("/staff/approvals?actionable=true", headers=perms.staff(reader))
    assert created.json()["id"] not in [a["id"] for a in inbox.json()]
    # Another compliance officer can.
    other = await perms.staff_member("compliance_officer")
    assert (await perms.approve(created.json()["id"], other)).status_code == 200


async def test_a_nul_inside_a_payload_key_is_a_422_naming_the_field(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    response = await perms.client.post(
        "/staff/approvals",
        json={"operation": "account.unfreeze", "payload": {"acc\u0000ount_id": "x"}},
        headers=perms.staff(maker),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert ["body", "payload"] in [e["loc"] for e in response.json()["errors"]]
