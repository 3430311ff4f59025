"""Custom roles change under maker-checker too, and every process reloads the model."""

from __future__ import annotations

from typing import Any

import httpx

from tests.permissions.conftest import Perms, new_subject


async def propose(perms: Perms, maker: str, **role: Any) -> httpx.Response:
    return await perms.client.post("/staff/role-changes", json=role, headers=perms.staff(maker))


async def test_custom_role_is_approved_by_another_admin_then_usable(perms: Perms) -> None:
    other_admin = await perms.staff_member("admin")
    proposed = await propose(
        perms, perms.admin, name="branch_supervisor", parent="teller", allows=["account:freeze"], justification="x"
    )
    assert proposed.status_code == 201
    assert proposed.json()["operation"] == "role.change"
    assert (await perms.approve(proposed.json()["id"], perms.admin)).json()["code"] == "self_approval"
    applied = await perms.approve(proposed.json()["id"], other_admin)
    assert applied.json()["state"] == "executed"
    roles = {r["name"]: r for r in (await perms.client.get("/staff/roles", headers=perms.staff(new_subject()))).json()}
    assert roles["branch_supervisor"]["inherits"] == ["teller", "user", "restricted_user"]
    supervisor = await perms.staff_member("branch_supervisor")
    freeze = await perms.check(supervisor, "account:freeze")
    assert freeze["allowed"]
    assert freeze["role"] == "branch_supervisor"
    inherited = await perms.check(supervisor, "funds:read")
    assert "inherited from teller" in inherited["reason"]

    # Replacing the definition takes the permission away from every holder.
    changed = await propose(perms, other_admin, name="branch_supervisor", parent="teller", allows=[])
    await perms.approve(changed.json()["id"], perms.admin)
    assert not (await perms.check(supervisor, "account:freeze"))["allowed"]


async def test_role_changes_are_validated_and_need_role_modify(perms: Perms) -> None:
    builtin = await propose(perms, perms.admin, name="system_admin", parent="user", allows=["funds:read"])
    assert builtin.status_code == 400
    assert "shipped role" in builtin.json()["detail"]
    unknown = await propose(perms, perms.admin, name="odd_role", allows=["money:print"])
    assert unknown.json()["code"] == "invalid_payload"
    both = await propose(perms, perms.admin, name="odd_role", allows=["log:read"], denies=["log:read"])
    assert both.json()["code"] == "invalid_payload"
    no_parent = await propose(perms, perms.admin, name="odd_role", parent="nobody")
    assert no_parent.json()["code"] == "unknown_role"
    manager = await perms.staff_member("manager")
    assert (await propose(perms, manager, name="odd_role")).status_code == 403


async def test_inheritance_cycles_are_refused(perms: Perms) -> None:
    other_admin = await perms.staff_member("admin")
    for name, parent in (("ring_a", None), ("ring_b", "ring_a")):
        proposed = await propose(perms, perms.admin, name=name, parent=parent)
        assert (await perms.approve(proposed.json()["id"], other_admin)).json()["state"] == "executed"
    cycle = await propose(perms, perms.admin, name="ring_a", parent="ring_b")
    assert cycle.status_code == 400
    assert "cycle" in cycle.json()["detail"]
