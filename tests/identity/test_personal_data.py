"""Customers' personal data lives in the (real) vault: identity keeps a record id and its own indexes.

The vault here is the vault app on its own database, reached with identity's real service token
(``tests/identity/inprocess.py``); "down" is a vault address where nothing listens.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text, update

from kit.outbox import OutboxWorker
from services.identity.accounts import service as accounts_service
from services.identity.errors import FactorNotAvailable
from services.identity.mfa import service as mfa_service
from services.identity.models import Account, CustomerProfile, outbox
from services.identity.runtime import Runtime
from services.identity.vault import Purpose, VaultClient
from tests.identity.inprocess import Wiring
from tests.identity.support import customer_data, delivered, login, register

VAULT_DOWN = "http://127.0.0.1:9"


async def _identity_schema_text(app: FastAPI) -> str:
    """Every row of every table of the identity schema, as text (bytea as hex)."""
    async with app.state.database.sessionmaker() as session:
        tables = (
            await session.scalars(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'identity'")
            )
        ).all()
        dumped = [
            str(
                (
                    await session.execute(
                        text(f"SELECT coalesce(string_agg(t::text, chr(10)), '') FROM identity.\"{name}\" t")
                    )
                ).scalar_one()
            )
            for name in tables
        ]
    return "\n".join(dumped)


async def _profile(app: FastAPI, account_id: str) -> CustomerProfile:
    async with app.state.database.sessionmaker() as session:
        profile: CustomerProfile | None = await session.get(CustomerProfile, uuid.UUID(account_id))
    assert profile is not None
    return profile


async def _vault_subject_shredded(vault_app: FastAPI, subject_id: uuid.UUID) -> bool | None:
    """None: the vault never heard of the subject; else whether it was shredded."""
    async with vault_app.state.database.sessionmaker() as session:
        row = (
            await session.execute(text("SELECT shredded_at FROM vault.subject WHERE id = :id"), {"id": subject_id})
        ).first()
    return None if row is None else row.shredded_at is not None


@pytest.fixture
def vault_down(identity_app: FastAPI, wiring: Wiring) -> Iterator[None]:
    """identity's vault client pointed where nothing listens (its token still comes from identity)."""
    runtime: Runtime = identity_app.state.identity
    working = runtime.vault
    runtime.vault = VaultClient(wiring.service_client("identity", base_url=VAULT_DOWN, retries=0))
    try:
        yield
    finally:
        runtime.vault = working


async def test_registration_stores_personal_data_in_the_vault_and_none_in_identity(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    data = customer_data(email=f"Mixed.{uuid.uuid4().hex[:8]}@Example.com")
    response = await client.post("/public/register", json=data)
    assert response.status_code == 201, response.text
    account_id = response.json()["account_id"]
    await delivered(identity_app, client, account_id)  # delivery wrote what the dev sink received: still no clear PII

    profile = await _profile(identity_app, account_id)
    assert profile.vault_record_id is not None
    runtime: Runtime = identity_app.state.identity
    stored = await runtime.vault.read(
        profile.vault_record_id, ["name", "national_id", "phone", "email"], Purpose.account_servicing, unmasked=True
    )
    assert stored == {
        "name": data["name"],
        "national_id": data["id_number"],
        "phone": data["phone"],
        "email": data["email"].lower(),
    }

    everything = await _identity_schema_text(identity_app)
    assert account_id in everything  # the dump did read this customer's rows
    for clear in (data["phone"], data["id_number"], data["email"], data["email"].lower(), data["name"]):
        assert clear not in everything
        assert clear.encode().hex() not in everything


async def test_codes_reach_the_sink_with_the_recipient_read_from_the_vault(
    client: httpx.AsyncClient, identity_app: FastAPI, vault_app: FastAPI
) -> None:
    account_id, data = await register(client)
    messages = await delivered(identity_app, client, account_id)
    recipients = {m["template"]: (m["channel"], m["recipient"], m["status"]) for m in messages}
    assert recipients["code.verify:sms"] == ("sms", "+86" + data["phone"], "sink")
    assert recipients["code.verify:email"] == ("email", data["email"], "sink")
    # Each recipient was an unmasked vault read by identity, for the notification, naming it.
    audit = vault_app.state.audit_log.entries
    async with vault_app.state.database.sessionmaker() as session:
        reads = (
            await session.execute(
                select(audit.c.actor, audit.c.detail).where(
                    audit.c.action == "vault.decrypt", audit.c.target == account_id
                )
            )
        ).all()
    notified = {f"notification:{m['id']}" for m in messages}
    by_reference: dict[str, Any] = {r.detail["reference"]: r for r in reads if r.detail["reference"] in notified}
    assert set(by_reference) == notified
    assert {(r.actor, r.detail["purpose"]) for r in by_reference.values()} == {("identity", "customer_notification")}


async def test_vault_down_registration_is_a_503_and_creates_nothing_login_still_works(
    client: httpx.AsyncClient, identity_app: FastAPI, vault_down: None
) -> None:
    runtime: Runtime = identity_app.state.identity
    data = customer_data()
    response = await client.post("/public/register", json=data)
    assert (response.status_code, response.json()["code"]) == (503, "upstream_unavailable")
    assert response.headers["content-type"].startswith("application/problem+json")
    async with identity_app.state.database.sessionmaker() as session:
        created = await session.scalar(
            select(func.count())
            .select_from(Account)
            .where(Account.phone_index == runtime.keyring.index("phone", "+86" + data["phone"]))
        )
    assert created == 0


async def test_login_never_asks_the_vault(client: httpx.AsyncClient, identity_app: FastAPI, wiring: Wiring) -> None:
    _, data = await register(client)
    runtime: Runtime = identity_app.state.identity
    working = runtime.vault
    runtime.vault = VaultClient(wiring.service_client("identity", base_url=VAULT_DOWN, retries=0))
    try:
        by_phone = await login(client, data["phone"], device_id="first-device")
        by_email = await login(client, data["email"], device_id="another-device")
    finally:
        runtime.vault = working
    assert by_phone.json()["status"] == "authenticated", by_phone.text
    # A new device asks a second factor: the channels offered come from identity's own columns (only the
    # verified ones: the registration's e-mail was never verified, issue 13 item 1).
    assert by_email.json()["status"] == "mfa_required", by_email.text
    assert "sms" in by_email.json()["methods"]
    assert "email" not in by_email.json()["methods"]


async def test_a_failure_after_the_vault_write_shreds_what_was_stored(
    client: httpx.AsyncClient, identity_app: FastAPI, vault_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """identity's own write fails after the vault stored the record: the subject is shredded, no orphan."""
    attempted: list[uuid.UUID] = []

    async def failing_send_code(session: Any, runtime: Any, account: Account, **_: Any) -> uuid.UUID:
        attempted.append(account.id)
        raise FactorNotAvailable("the SMS gateway refused the number")

    monkeypatch.setattr(mfa_service, "send_code", failing_send_code)
    response = await client.post("/public/register", json=customer_data())
    assert response.status_code == 400
    (account_id,) = attempted
    assert await _vault_subject_shredded(vault_app, account_id) is True
    async with vault_app.state.database.sessionmaker() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM vault.record WHERE subject_id = :id),"
                    " (SELECT count(*) FROM vault.data_key WHERE subject_id = :id)"
                ),
                {"id": account_id},
            )
        ).one()
    assert tuple(counts) == (1, 0)  # the record had been stored; its key is destroyed
    async with identity_app.state.database.sessionmaker() as session:
        assert await session.get(Account, account_id) is None


async def _registration_switch(identity_app: FastAPI, account_id: uuid.UUID) -> Any:
    async with identity_app.state.database.sessionmaker() as session:
        return (
            await session.execute(
                select(outbox.messages).where(outbox.messages.c.idempotency_key == f"registration-shred:{account_id}")
            )
        ).first()


async def test_a_committed_registration_takes_its_shred_back(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, _ = await register(client)
    assert await _registration_switch(identity_app, uuid.UUID(account_id)) is None


async def test_a_registration_that_dies_after_the_vault_write_is_shredded_when_its_switch_fires(
    identity_app: FastAPI, vault_app: FastAPI
) -> None:
    """No error handler runs when the process dies between the vault write and identity's commit: the
    shred armed (and committed) before the vault write is what removes the orphan, once it is due."""
    runtime: Runtime = identity_app.state.identity
    data = customer_data()
    async with identity_app.state.database.sessionmaker() as session:
        account = await accounts_service.register_customer(
            session,
            runtime,
            accounts_service.NewCustomer(
                data["name"], data["id_type"], data["id_number"], data["phone"], data["email"], data["password"]
            ),
        )
        account_id = account.id
        await session.rollback()  # the process "dies": no commit, no clean-up
    switch = await _registration_switch(identity_app, account_id)
    assert switch is not None
    assert (switch.status, switch.method, switch.path) == (
        "pending",
        "DELETE",
        f"/v1/vault/internal/subjects/{account_id}",
    )
    delay = runtime.settings.registration_shred_after_seconds
    assert switch.next_attempt_at >= switch.created_at + timedelta(seconds=delay - 5)
    worker: OutboxWorker = identity_app.state.outbox_worker
    await worker.deliver_due()
    assert await _vault_subject_shredded(vault_app, account_id) is False  # stored, and not due yet
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(outbox.messages).where(outbox.messages.c.id == switch.id).values(next_attempt_at=datetime.now(UTC))
        )
        await session.commit()
    await worker.deliver_due()
    assert await _vault_subject_shredded(vault_app, account_id) is True
    async with identity_app.state.database.sessionmaker() as session:
        assert await session.get(Account, account_id) is None
