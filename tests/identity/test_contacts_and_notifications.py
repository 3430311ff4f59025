"""Changing a contact (step-up, old contact told, new one verified) and the notification webhook."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.identity.errors import FactorNotAvailable
from services.identity.mfa import service as mfa_service
from services.identity.models import CustomerProfile, Notification
from services.identity.notifications.service import NotificationWorker, send
from services.identity.runtime import Runtime
from services.identity.vault import Purpose
from tests.identity.support import bearer, delivered, latest_code, login, phone, signed_in
from tests.support.suite import build_service


async def phone_in_vault(identity_app: FastAPI, account_id: str) -> dict[str, str]:
    """The phone the vault holds for the account's profile record, read as identity reads it."""
    runtime: Runtime = identity_app.state.identity
    async with identity_app.state.database.sessionmaker() as session:
        profile = await session.get(CustomerProfile, uuid.UUID(account_id))
    assert profile is not None
    assert profile.vault_record_id is not None
    return await runtime.vault.read(profile.vault_record_id, ["phone"], Purpose.account_servicing, unmasked=True)


async def test_phone_change_needs_a_step_up_and_a_new_verification(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, data, tokens = await signed_in(client)
    token = tokens["access_token"]
    new_phone = phone()
    refused = await client.post(
        "/customer/contacts", json={"channel": "sms", "value": new_phone}, headers=bearer(token)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "step_up_required")
    await client.post("/me/step-up/send", json={"action": "contact.change", "channel": "email"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:contact.change")
    granted = await client.post(
        "/me/step-up", json={"action": "contact.change", "method": "email", "code": code}, headers=bearer(token)
    )
    assert granted.status_code == 201
    changed = await client.post(
        "/customer/contacts", json={"channel": "sms", "value": new_phone}, headers=bearer(token)
    )
    assert changed.json() == {"channel": "sms", "verified": False}
    messages = await delivered(identity_app, client, account_id)
    # The old number is told (it travelled with its alert); the new one gets its code, read from the vault.
    alerts = [m for m in messages if m["template"] == "alert.contact_changed"]
    assert [m["recipient"] for m in alerts] == ["+86" + data["phone"]]
    codes = [m for m in messages if m["template"] == "code.verify:sms"]
    assert codes[0]["recipient"] == "+86" + new_phone
    stored = await phone_in_vault(identity_app, account_id)
    assert stored == {"phone": new_phone}
    # Unverified: the next login is refused until the new phone is confirmed.
    assert (await login(client, new_phone)).json()["code"] == "contact_not_verified"
    assert (await login(client, data["phone"])).status_code == 401
    verify_code = await latest_code(client, account_id, "code.verify:sms")
    verified = await client.post(
        "/customer/contacts/verify", json={"channel": "sms", "code": verify_code}, headers=bearer(token)
    )
    assert verified.json() == {"channel": "sms", "verified": True}
    assert (await login(client, new_phone)).status_code == 200


async def test_contact_of_another_account_is_refused(client: httpx.AsyncClient) -> None:
    account_id, _, tokens = await signed_in(client)
    _, other, _ = await signed_in(client)
    token = tokens["access_token"]
    await client.post("/me/step-up/send", json={"action": "contact.change", "channel": "sms"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:contact.change")
    await client.post(
        "/me/step-up", json={"action": "contact.change", "method": "sms", "code": code}, headers=bearer(token)
    )
    taken = await client.post(
        "/customer/contacts", json={"channel": "email", "value": other["email"]}, headers=bearer(token)
    )
    assert taken.status_code == 409


async def test_webhook_delivery_with_idempotency_key_and_retry(fresh_database_url: str) -> None:
    """The SMS/email provider is the outside world: a stand-in webhook that fails once, then accepts."""
    received: list[tuple[str, dict[str, str]]] = []

    def provider(request: httpx.Request) -> httpx.Response:
        received.append((request.headers["idempotency-key"], json.loads(request.content)))
        return httpx.Response(503 if len(received) == 1 else 202)

    app = build_service(
        "identity",
        fresh_database_url,
        risk_scoring_enabled=False,
        outbox_enabled=False,
        notification_webhook_url="https://sms.example/send",
        notification_poll_seconds=0.05,
    )
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.identity
        worker: NotificationWorker = app.state.notification_worker
        await worker.http.aclose()
        worker.http = httpx.AsyncClient(transport=httpx.MockTransport(provider))
        async with app.state.database.sessionmaker() as session:
            notification_id = await send(
                session,
                runtime.keyring,
                account_id=None,
                channel="sms",
                template="test.webhook",
                recipient="+8613900000000",
                body="hello",
            )
            await session.commit()
        status = None
        for _ in range(200):
            async with app.state.database.sessionmaker() as session:
                row = await session.get(Notification, notification_id)
                assert row is not None
                if row.status == "pending" and row.attempts == 1:
                    row.next_attempt_at = row.created_at  # skip the backoff wait
                    await session.commit()
                status = row.status
            if status == "delivered":
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as plain:
            sink_refused = await plain.get("/internal/dev/notifications")
    assert status == "delivered"
    assert [key for key, _ in received] == [str(notification_id)] * 2
    assert received[0][1] == {
        "id": str(notification_id),
        "channel": "sms",
        "template": "test.webhook",
        "recipient": "+8613900000000",
        "body": "hello",
    }
    assert sink_refused.status_code == 401  # no token; and with a webhook the sink does not exist


async def test_a_contact_change_that_fails_after_the_vault_update_puts_the_old_value_back(
    client: httpx.AsyncClient, identity_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id, data, tokens = await signed_in(client)
    token = tokens["access_token"]
    await client.post("/me/step-up/send", json={"action": "contact.change", "channel": "email"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:contact.change")
    granted = await client.post(
        "/me/step-up", json={"action": "contact.change", "method": "email", "code": code}, headers=bearer(token)
    )
    assert granted.status_code == 201

    async def refusing_send_code(*_: Any, **__: Any) -> uuid.UUID:
        raise FactorNotAvailable("the SMS gateway refused the number")

    monkeypatch.setattr(mfa_service, "send_code", refusing_send_code)
    failed = await client.post("/customer/contacts", json={"channel": "sms", "value": phone()}, headers=bearer(token))
    assert failed.status_code == 400
    stored = await phone_in_vault(identity_app, account_id)
    assert stored == {"phone": data["phone"]}
    assert (await login(client, data["phone"], device_id="same")).status_code == 200
