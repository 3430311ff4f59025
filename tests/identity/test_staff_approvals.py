"""Issue 13 item 2 (identity side: a staff contact change is a maker-checker approval, the old contact is
told) and item 7 (closing any account is a maker-checker approval; nobody closes their own account)."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from kit.permissions import payload_hash
from services.identity.models import Account
from tests.identity.fakes import FakePermissions
from tests.identity.staff_support import staff_token
from tests.identity.support import bearer, latest_code, login, phone, signed_in, sink


async def _officer(
    client: httpx.AsyncClient, app: FastAPI, permissions: FakePermissions, *grants: str
) -> tuple[str, str]:
    staff_id, token = await staff_token(client, app, f"officer-{uuid.uuid4().hex[:8]}")
    permissions.grant(staff_id, *grants)
    return staff_id, token


async def test_one_staff_member_cannot_close_an_account_alone(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data, _ = await signed_in(client)
    _, token = await _officer(client, identity_app, permissions, "account:close")
    alone = await client.post(f"/staff/accounts/{account_id}/close", json={"reason": "x"}, headers=bearer(token))
    assert alone.status_code == 422  # an approval is part of the request
    made_up = await client.post(
        f"/staff/accounts/{account_id}/close",
        json={"reason": "x", "approval_id": str(uuid.uuid4())},
        headers=bearer(token),
    )
    assert (made_up.status_code, made_up.json()["code"]) == (409, "approval_refused")
    # An approval for another account does not close this one.
    other = str(uuid.uuid4())
    permissions.approved[other] = ("account.close", payload_hash({"account_id": str(uuid.uuid4())}))
    wrong = await client.post(
        f"/staff/accounts/{account_id}/close", json={"reason": "x", "approval_id": other}, headers=bearer(token)
    )
    assert wrong.status_code == 409
    assert (await login(client, data["phone"])).status_code == 200


async def test_nobody_closes_their_own_account_as_staff(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    """Not even an administrator holding account:close with an approval for it."""
    staff_id, token = await _officer(client, identity_app, permissions, "account:close")
    approval = str(uuid.uuid4())
    permissions.approved[approval] = ("account.close", payload_hash({"account_id": staff_id}))
    own = await client.post(
        f"/staff/accounts/{staff_id}/close", json={"reason": "leaving", "approval_id": approval}, headers=bearer(token)
    )
    assert (own.status_code, own.json()["code"]) == (403, "own_account")
    async with identity_app.state.database.sessionmaker() as session:
        account = await session.get(Account, uuid.UUID(staff_id))
    assert account is not None
    assert account.status == "active"


async def test_a_staff_contact_change_needs_an_approval_and_tells_the_old_contact(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data, _ = await signed_in(client)
    _, token = await _officer(client, identity_app, permissions, "account:modify")
    insider_phone = phone()
    # The insider's own phone, without a second person: refused.
    alone = await client.post(
        f"/staff/accounts/{account_id}/contact-change",
        json={"channel": "sms", "value": insider_phone, "approval_id": str(uuid.uuid4()), "reason": "x"},
        headers=bearer(token),
    )
    assert (alone.status_code, alone.json()["code"]) == (409, "approval_refused")
    assert (await login(client, data["phone"])).json()["status"] == "authenticated"

    # The proposal gives the approval's payload: the value masked, bound by a keyed hash.
    proposal = await client.post(
        f"/staff/accounts/{account_id}/contact-change/proposal",
        json={"channel": "sms", "value": insider_phone},
        headers=bearer(token),
    )
    payload = proposal.json()
    assert payload["value_masked"] == insider_phone[:3] + "****" + insider_phone[-4:]
    assert insider_phone not in proposal.text
    # An approval of another number does not let this one through.
    other = await client.post(
        f"/staff/accounts/{account_id}/contact-change/proposal",
        json={"channel": "sms", "value": phone()},
        headers=bearer(token),
    )
    approval = str(uuid.uuid4())
    permissions.approved[approval] = ("account.change", payload_hash(other.json()))
    swapped = await client.post(
        f"/staff/accounts/{account_id}/contact-change",
        json={"channel": "sms", "value": insider_phone, "approval_id": approval, "reason": "x"},
        headers=bearer(token),
    )
    assert swapped.status_code == 409

    approval = str(uuid.uuid4())
    permissions.approved[approval] = ("account.change", payload_hash(payload))
    changed = await client.post(
        f"/staff/accounts/{account_id}/contact-change",
        json={"channel": "sms", "value": insider_phone, "approval_id": approval, "reason": "lost phone, ID seen"},
        headers=bearer(token),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"channel": "sms", "verified": False, "old_told": True}
    messages = await sink(client, account_id)
    told = [m for m in messages if m["template"] == "alert.contact_changed"]
    assert told
    assert told[0]["recipient"] in (data["phone"], "+86" + data["phone"], None)
    # The new phone is unverified: it gets a verification code, never a reset code.
    assert await latest_code(client, account_id, "code.verify:sms")
    await client.post("/public/password/reset/start", json={"identifier": insider_phone, "channel": "sms"})
    assert not any(m["template"] == "code.password.reset" for m in await sink(client, account_id))


async def test_staff_cannot_change_their_own_contacts_this_way(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    staff_id, token = await _officer(client, identity_app, permissions, "account:modify")
    proposal = await client.post(
        f"/staff/accounts/{staff_id}/contact-change/proposal",
        json={"channel": "email", "value": "me@bank.example"},
        headers=bearer(token),
    )
    assert (proposal.status_code, proposal.json()["code"]) == (403, "own_account")
