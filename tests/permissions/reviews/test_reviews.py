"""Access-review campaigns and the over-privilege report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from services.permissions.models import Grant, ReviewCampaign
from tests.permissions.conftest import Perms, new_subject, soon


async def campaign(perms: Perms, reviewer: str, *subjects: str, by: str | None = None) -> Any:
    return await perms.client.post(
        "/staff/reviews",
        json={
            "name": "Q4 recertification",
            "due_at": soon(7 * 86_400),
            "assignments": [{"reviewer": reviewer, "subjects": list(subjects)}],
        },
        headers=perms.staff(by or perms.admin),
    )


async def test_manager_certifies_and_revokes_their_staffs_grants(perms: Perms) -> None:
    manager = await perms.staff_member("manager")
    alice = await perms.staff_member("teller", "auditor")
    bob = await perms.staff_member("customer_manager")
    created = await campaign(perms, manager, alice, bob)
    assert created.status_code == 201
    body = created.json()
    assert body["counts"] == {"pending": 3, "certified": 0, "revoked": 0}
    assert body["overdue"] is False
    items = await perms.client.get(f"/staff/reviews/{body['id']}/items", headers=perms.staff(manager))
    by_role = {i["role"]: i for i in items.json()}
    assert set(by_role) == {"teller", "auditor", "customer_manager"}

    certify = await perms.client.post(
        f"/staff/reviews/items/{by_role['teller']['id']}", json={"decision": "certified"}, headers=perms.staff(manager)
    )
    assert certify.json()["decision"] == "certified"
    revoke = await perms.client.post(
        f"/staff/reviews/items/{by_role['auditor']['id']}",
        json={"decision": "revoked", "comment": "left audit"},
        headers=perms.staff(manager),
    )
    assert revoke.json()["decision"] == "revoked"
    assert not (await perms.check(alice, "audit:read"))["allowed"]
    assert (await perms.check(alice, "funds:read"))["allowed"]
    again = await perms.client.post(
        f"/staff/reviews/items/{by_role['teller']['id']}", json={"decision": "revoked"}, headers=perms.staff(manager)
    )
    assert again.status_code == 409
    progress = await perms.client.get(f"/staff/reviews/{body['id']}", headers=perms.staff(manager))
    assert progress.json()["counts"] == {"pending": 1, "certified": 1, "revoked": 1}


async def test_only_the_assigned_reviewer_decides(perms: Perms) -> None:
    manager = await perms.staff_member("manager")
    other_manager = await perms.staff_member("manager")
    subject = await perms.staff_member("teller")
    created = (await campaign(perms, manager, subject)).json()
    items = await perms.client.get(f"/staff/reviews/{created['id']}/items", headers=perms.staff(other_manager))
    assert items.json() == []
    everyone = await perms.client.get(
        f"/staff/reviews/{created['id']}/items?everyone=true", headers=perms.staff(other_manager)
    )
    assert everyone.status_code == 403
    all_items = await perms.client.get(
        f"/staff/reviews/{created['id']}/items?everyone=true", headers=perms.staff(perms.admin)
    )
    item_id = all_items.json()[0]["id"]
    refused = await perms.client.post(
        f"/staff/reviews/items/{item_id}", json={"decision": "certified"}, headers=perms.staff(other_manager)
    )
    assert refused.status_code == 403


async def test_nobody_reviews_their_own_access(perms: Perms) -> None:
    manager = await perms.staff_member("manager")
    refused = await campaign(perms, manager, manager)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_review"
    not_manager = await campaign(perms, manager, new_subject(), by=manager)
    assert not_manager.status_code == 403


async def test_overdue_reviews_are_flagged(perms: Perms) -> None:
    manager = await perms.staff_member("manager")
    subject = await perms.staff_member("teller")
    created = (await campaign(perms, manager, subject)).json()
    async with perms.sessionmaker() as session:
        await session.execute(
            update(ReviewCampaign)
            .where(ReviewCampaign.id == created["id"])
            .values(due_at=datetime.now(UTC) - timedelta(days=1))
        )
        await session.commit()
    progress = await perms.client.get(f"/staff/reviews/{created['id']}", headers=perms.staff(manager))
    assert progress.json()["overdue"] is True
    overdue = await perms.client.get("/staff/reviews/overdue", headers=perms.staff(perms.admin))
    assert {"campaign_id": created["id"], "reviewer": manager, "pending": 1}.items() <= next(
        o for o in overdue.json() if o["campaign_id"] == created["id"]
    ).items()


async def test_unused_grants_are_reported_and_use_is_recorded(perms: Perms) -> None:
    idle = await perms.staff_member("auditor")
    busy = await perms.staff_member("teller")
    long_ago = datetime.now(UTC) - timedelta(days=200)
    async with perms.sessionmaker() as session:
        await session.execute(update(Grant).where(Grant.subject.in_([idle, busy])).values(created_at=long_ago))
        await session.commit()
    assert (await perms.check(busy, "funds:read"))["allowed"]
    report = await perms.client.get("/staff/reports/over-privilege", headers=perms.staff(perms.admin))
    unused = {g["subject"] for g in report.json()["unused_grants"]}
    assert idle in unused
    assert busy not in unused
    grants = await perms.client.get(f"/staff/grants?subject={busy}", headers=perms.staff(perms.admin))
    assert grants.json()[0]["last_used_at"] is not None


async def test_report_needs_audit_read(perms: Perms) -> None:
    response = await perms.client.get("/staff/reports/over-privilege", headers=perms.staff(new_subject()))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_closing_revokes_what_nobody_certified(perms: Perms) -> None:
    manager = await perms.staff_member("manager")
    subject = await perms.staff_member("teller", "auditor")
    created = (await campaign(perms, manager, subject)).json()
    items = (await perms.client.get(f"/staff/reviews/{created['id']}/items", headers=perms.staff(manager))).json()
    teller = next(i for i in items if i["role"] == "teller")
    await perms.client.post(
        f"/staff/reviews/items/{teller['id']}", json={"decision": "certified"}, headers=perms.staff(manager)
    )
    closed = await perms.client.post(
        f"/staff/reviews/{created['id']}/close?revoke_pending=true", headers=perms.staff(perms.admin)
    )
    assert closed.status_code == 200
    assert closed.json()["counts"] == {"pending": 0, "certified": 1, "revoked": 1}
    assert closed.json()["closed_at"] is not None
    assert (await perms.check(subject, "funds:read"))["allowed"]
    assert not (await perms.check(subject, "audit:verify"))["allowed"]
    again = await perms.client.post(f"/staff/reviews/{created['id']}/close", headers=perms.staff(perms.admin))
    assert again.json()["code"] == "review_closed"
