"""Maker-checker approvals: state machine, payload binding, exactly-once execution under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from kit.permissions import payload_hash
from services.permissions.models import Approval, audit_log
from tests.permissions.conftest import Perms, new_subject

PAYLOAD = {"account_id": "6b1e5d0c-3f0a-4e55-8f6e-2d7c9a1b4e21", "reason": "customer verified"}


async def create(perms: Perms, maker: str, operation: str = "account.unfreeze", payload: Any = None) -> dict[str, Any]:
    response = await perms.client.post(
        "/staff/approvals",
        json={"operation": operation, "payload": payload or PAYLOAD, "comment": "please"},
        headers=perms.staff(maker),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def execute(perms: Perms, approval_id: str, service: str = "identity", **body: Any) -> Any:
    payload = {"operation": "account.unfreeze", "payload_hash": payload_hash(PAYLOAD), **body}
    return await perms.client.post(
        f"/internal/approvals/{approval_id}/execute", json=payload, headers=perms.service(service)
    )


async def test_created_pending_with_policy_and_hash(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    approval = await create(perms, maker)
    assert approval["state"] == "pending"
    assert approval["payload_hash"] == payload_hash(PAYLOAD)
    assert approval["required_approvals"] == 1
    assert approval["approver_permission"] == "account:unfreeze"
    assert approval["expires_at"] > approval["created_at"]


async def test_unknown_or_internal_operations_are_refused(perms: Perms) -> None:
    maker = await perms.staff_member("user")
    for operation in ("nuclear.launch", "role.grant"):
        response = await perms.client.post(
            "/staff/approvals", json={"operation": operation, "payload": {}}, headers=perms.staff(maker)
        )
        assert response.status_code == 400
        assert response.json()["code"] == "unknown_operation"


async def test_creating_needs_approval_create(perms: Perms) -> None:
    response = await perms.client.post(
        "/staff/approvals", json={"operation": "account.unfreeze", "payload": {}}, headers=perms.staff(new_subject())
    )
    assert response.status_code == 403


async def test_approve_then_execute_exactly_once(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    approval = await create(perms, maker)
    assert (await execute(perms, approval["id"])).json()["code"] == "approval_not_approved"
    approved = await perms.approve(approval["id"], checker)
    assert approved.json()["state"] == "approved"
    first = await execute(perms, approval["id"])
    assert first.status_code == 200
    assert first.json()["executed"] is True
    assert first.json()["approved_by"] == [checker]
    second = await execute(perms, approval["id"])
    assert second.status_code == 409
    assert second.json()["code"] == "approval_already_executed"
    final = await perms.client.get(f"/staff/approvals/{approval['id']}", headers=perms.staff(maker))
    assert final.json()["state"] == "executed"
    assert final.json()["executed_by"] == "identity"


async def test_concurrent_executions_yield_one_winner(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    approval = await create(perms, maker)
    await perms.approve(approval["id"], checker)
    responses = await asyncio.gather(*(execute(perms, approval["id"]) for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 11
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"approval_already_executed"}


async def test_changed_payload_or_operation_is_refused(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    approval = await create(perms, maker)
    await perms.approve(approval["id"], await perms.staff_member("compliance_officer"))
    tampered = await execute(perms, approval["id"], payload_hash=payload_hash({**PAYLOAD, "account_id": "other"}))
    assert tampered.status_code == 409
    assert tampered.json()["code"] == "approval_payload_mismatch"
    other_op = await execute(perms, approval["id"], operation="account.change")
    assert other_op.json()["code"] == "approval_payload_mismatch"
    assert (await execute(perms, approval["id"])).status_code == 200


async def test_only_the_policy_executor_may_execute(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    approval = await create(perms, maker)
    await perms.approve(approval["id"], await perms.staff_member("compliance_officer"))
    refused = await execute(perms, approval["id"], service="vault")
    assert refused.status_code == 403
    assert refused.json()["code"] == "executor_not_allowed"
    staff = await perms.client.post(
        f"/internal/approvals/{approval['id']}/execute",
        json={"operation": "account.unfreeze", "payload_hash": payload_hash(PAYLOAD)},
        headers=perms.staff(maker),
    )
    assert staff.status_code == 403


async def test_expired_approval_cannot_be_approved_or_executed(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    approval = await create(perms, maker)
    await perms.approve(approval["id"], checker)
    async with perms.sessionmaker() as session:
        await session.execute(
            update(Approval)
            .where(Approval.id == approval["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    refused = await execute(perms, approval["id"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "approval_expired"
    shown = await perms.client.get(f"/staff/approvals/{approval['id']}", headers=perms.staff(maker))
    assert shown.json()["state"] == "expired"
    listed = await perms.client.get("/staff/approvals?state=expired&mine=true", headers=perms.staff(maker))
    assert [a["id"] for a in listed.json()] == [approval["id"]]


async def test_self_approval_and_double_decisions_are_refused(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager", "user")
    await perms.train(maker)
    approval = await create(perms, maker, "vault.key_delete", {"kek_version": 3})
    assert approval["required_approvals"] == 2
    first = await perms.staff_member("approver")
    second = await perms.staff_member("compliance_officer")
    assert (await perms.approve(approval["id"], maker)).json()["code"] == "self_approval"
    assert (await perms.approve(approval["id"], first)).json()["state"] == "pending"
    again = await perms.approve(approval["id"], first)
    assert again.status_code == 409
    assert again.json()["code"] == "already_decided"
    assert (await perms.approve(approval["id"], second)).json()["state"] == "approved"


async def test_rejection_and_withdrawal(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    approval = await create(perms, maker)
    rejected = await perms.client.post(
        f"/staff/approvals/{approval['id']}/reject", json={"comment": "no ticket"}, headers=perms.staff(checker)
    )
    assert rejected.json()["state"] == "rejected"
    assert (await perms.approve(approval["id"], checker)).json()["code"] == "approval_not_pending"
    async with perms.sessionmaker() as session:
        entries = audit_log.entries
        actions = (
            await session.execute(
                select(entries.c.action).where(entries.c.target == approval["id"]).order_by(entries.c.seq)
            )
        ).scalars()
        assert list(actions)[:2] == ["approval.created", "approval.rejected"]
    mine = await create(perms, maker)
    withdrawn = await perms.client.post(f"/staff/approvals/{mine['id']}/reject", json={}, headers=perms.staff(maker))
    assert withdrawn.json()["state"] == "rejected"


async def test_approver_role_is_enforced(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    approval = await create(perms, maker, "vault.unmasked_read", {"customer": "c-1", "fields": ["id_number"]})
    approver = await perms.staff_member("approver")
    refused = await perms.approve(approval["id"], approver)
    assert refused.status_code == 403
    assert "compliance_officer" in refused.json()["detail"]
    assert (await perms.approve(approval["id"], await perms.staff_member("compliance_officer"))).status_code == 200


async def test_comments_and_reading(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    approval = await create(perms, maker)
    outsider = new_subject()
    denied = await perms.client.get(f"/staff/approvals/{approval['id']}", headers=perms.staff(outsider))
    assert denied.status_code == 403
    commented = await perms.client.post(
        f"/staff/approvals/{approval['id']}/comments", json={"body": "ticket INC-1"}, headers=perms.staff(maker)
    )
    assert commented.status_code == 201
    shown = await perms.client.get(f"/staff/approvals/{approval['id']}", headers=perms.staff(maker))
    assert [c["body"] for c in shown.json()["comments"]] == ["please", "ticket INC-1"]
    missing = await perms.client.get(f"/staff/approvals/{new_subject()}", headers=perms.staff(maker))
    assert missing.status_code == 404


async def test_requirement_follows_policy_thresholds(perms: Perms) -> None:
    async def ask(operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await perms.client.post(
            "/internal/approval-requirements",
            json={"operation": operation, "payload": payload},
            headers=perms.service("risk"),
        )
        body: dict[str, Any] = response.json()
        return body

    assert (await ask("transfer.execute", {"amount_minor": 100}))["required"] is False
    big = await ask("transfer.execute", {"amount_minor": 5_000_000})
    assert big["required"] is True
    assert big["approver_permission"] == "transfer:approve"
    assert (await ask("transfer.execute", {"amount_minor": "lots"}))["required"] is True
    assert (await ask("account.unfreeze", {}))["required"] is True
    assert (await ask("coffee.order", {}))["required"] is False


async def test_frozen_checker_cannot_approve(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    frozen = await perms.client.post(
        f"/internal/subjects/{checker}/status",
        json={"status": "frozen", "reason": "incident"},
        headers=perms.service("identity"),
    )
    assert frozen.status_code == 200
    approval = await create(perms, maker)
    refused = await perms.approve(approval["id"], checker)
    assert refused.status_code == 403
    assert "frozen" in refused.json()["detail"]


async def test_deciding_needs_a_second_factor(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    approval = await create(perms, maker)
    password_only = perms.staff(checker, acr="aal1", amr=("pwd",))
    refused = await perms.client.post(f"/staff/approvals/{approval['id']}/approve", json={}, headers=password_only)
    assert refused.status_code == 403
    assert refused.json()["code"] == "step_up_required"
    assert (await perms.approve(approval["id"], checker)).json()["state"] == "approved"


async def test_refusals_are_audited(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    approval = await create(perms, maker)
    assert (await perms.approve(approval["id"], maker)).status_code == 403
    assert (await execute(perms, approval["id"])).status_code == 409
    async with perms.sessionmaker() as session:
        entries = audit_log.entries
        rows = (
            await session.execute(
                select(entries.c.action, entries.c.actor, entries.c.outcome, entries.c.detail)
                .where(entries.c.target == approval["id"], entries.c.outcome == "refused")
                .order_by(entries.c.seq)
            )
        ).all()
    assert [(r.action, r.actor, r.detail["code"]) for r in rows] == [
        ("approval.approve", maker, "self_approval"),
        ("approval.execute", "identity", "approval_not_approved"),
    ]


async def test_checker_inbox_lists_only_what_the_caller_may_decide(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    checker = await perms.staff_member("compliance_officer")
    unfreeze = await create(perms, maker)
    key_delete = await create(perms, maker, "vault.key_delete", {"kek_version": 9})
    inbox = await perms.client.get("/staff/approvals?actionable=true&limit=500", headers=perms.staff(checker))
    ids = {a["id"] for a in inbox.json()}
    assert {unfreeze["id"], key_delete["id"]} <= ids
    makers_inbox = await perms.client.get("/staff/approvals?actionable=true&limit=500", headers=perms.staff(maker))
    assert not {unfreeze["id"], key_delete["id"]} & {a["id"] for a in makers_inbox.json()}


async def test_concurrent_approvals_complete_an_approval_once(perms: Perms) -> None:
    maker = await perms.staff_member("customer_manager")
    first, second = await perms.staff_member("approver"), await perms.staff_member("compliance_officer")
    two_needed = await create(perms, maker, "vault.key_delete", {"kek_version": 4})
    both = await asyncio.gather(perms.approve(two_needed["id"], first), perms.approve(two_needed["id"], second))
    assert sorted(r.json()["state"] for r in both) == ["approved", "pending"]
    third = await perms.staff_member("compliance_officer")
    one_needed = await create(perms, maker)
    racing = await asyncio.gather(perms.approve(one_needed["id"], second), perms.approve(one_needed["id"], third))
    assert sorted(r.status_code for r in racing) == [200, 409]
    assert next(r for r in racing if r.status_code == 409).json()["code"] == "approval_not_pending"
