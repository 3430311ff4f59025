"""From the attacker's side (an insider): redirecting a customer's codes, collecting records under the
bulk limit, shredding alone, a one-factor session, and a crash between a shred and its ledger."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from services.vault.models import outbox
from tests.support.database import TestDatabases
from tests.vault.conftest import VaultClient, start_vault

PHONE = "13812345678"


async def identity_record(vault: VaultClient, subject: str | None = None) -> dict[str, str]:
    """A record identity stored at sign-up (the one identity reads one-time-code recipients from)."""
    response = await vault.http.post(
        "/internal/records",
        json={"subject_id": subject or str(uuid.uuid4()), "fields": {"phone": PHONE, "name": "张三"}},
        headers=vault.service("identity"),
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_staff_cannot_put_their_phone_into_an_identity_record(vault: VaultClient) -> None:
    record = await identity_record(vault)
    insider = vault.staff("account:modify")
    redirected = await vault.http.patch(
        f"/staff/records/{record['id']}", json={"fields": {"phone": "13900000000"}}, headers=insider
    )
    assert redirected.status_code == 403, redirected.text
    assert redirected.json()["code"] == "contact_change_refused"
    email = await vault.http.patch(
        f"/staff/records/{record['id']}", json={"fields": {"email": "insider@example.com"}}, headers=insider
    )
    assert email.status_code == 403
    # The phone is still the customer's.
    read = await vault.http.post(
        f"/internal/records/{record['id']}/reads",
        json={"purpose": "authentication", "fields": ["phone"], "unmasked": True},
        headers=vault.service("identity"),
    )
    assert read.json()["records"][0]["fields"]["phone"]["value"] == PHONE
    # Other fields of the record, and identity's own contact flow, still work.
    name = await vault.http.patch(f"/staff/records/{record['id']}", json={"fields": {"name": "李四"}}, headers=insider)
    assert name.status_code == 200
    own = await vault.http.patch(
        f"/internal/records/{record['id']}",
        json={"fields": {"phone": "13900000001"}},
        headers=vault.service("identity"),
    )
    assert own.status_code == 200


async def test_every_staff_route_needs_a_second_factor(vault: VaultClient) -> None:
    record = await identity_record(vault)
    for permission, method, path, body in [
        ("vault:read", "GET", f"/staff/records/{record['id']}", None),
        ("vault:read", "POST", f"/staff/records/{record['id']}/reads", {"purpose": "kyc_review", "fields": ["name"]}),
        ("account:modify", "PATCH", f"/staff/records/{record['id']}", {"fields": {"name": "王五"}}),
        ("audit:read", "GET", "/staff/access-log", None),
        ("vault:key_rotate", "GET", "/staff/keys", None),
    ]:
        one_factor = vault.staff(permission, acr="aal1")
        response = await vault.http.request(method, path, json=body, headers=one_factor)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "step_up_required"


async def test_shredding_alone_is_refused_and_needs_an_approval(vault: VaultClient) -> None:
    record = await identity_record(vault)
    subject = record["subject_id"]
    shredder = vault.staff("account:close")
    alone = await vault.http.delete(f"/staff/subjects/{subject}", headers=shredder)
    assert alone.status_code == 403
    assert alone.json()["code"] == "approval_required"
    assert alone.json()["operation"] == "vault.shred"
    assert alone.json()["payload"] == {"subject_id": subject}
    one_factor = await vault.http.delete(
        f"/staff/subjects/{subject}",
        params={"approval_id": vault.permissions.approve("vault.shred", {"subject_id": subject})},
        headers=vault.staff("account:close", acr="aal1"),
    )
    assert one_factor.status_code == 403
    # An approval for another subject does not shred this one.
    other = vault.permissions.approve("vault.shred", {"subject_id": str(uuid.uuid4())})
    wrong = await vault.http.delete(f"/staff/subjects/{subject}", params={"approval_id": other}, headers=shredder)
    assert wrong.status_code == 409
    assert (await vault.shred(subject, shredder)).json()["shredded"] is True


@pytest.fixture
async def quota_vault(test_databases: TestDatabases) -> AsyncIterator[VaultClient]:
    url = await test_databases.clone("vault_test")
    async for client in start_vault(url, read_quota_records=10, read_quota_alert_ratio=0.5, outbox_enabled=False):
        yield client


async def test_a_reader_collecting_records_under_the_bulk_limit_hits_the_quota(quota_vault: VaultClient) -> None:
    vault = quota_vault
    records = [await identity_record(vault) for _ in range(12)]
    reader_id = str(uuid.uuid4())
    reader = vault.staff("vault:read", subject=reader_id)

    async def read(ids: list[str], approval_id: str | None = None) -> int:
        body = {"records": ids, "purpose": "customer_service", "fields": ["name"]}
        if approval_id:
            body["approval_id"] = approval_id
        response = await vault.http.post("/staff/reads", json=body, headers=reader)
        return response.status_code

    ids = [r["id"] for r in records]
    assert await read(ids[:4]) == 200
    assert await read(ids[4:8]) == 200  # 8 of 10: risk is told
    engine = create_async_engine(vault.database_url)
    messages = outbox.messages
    async with engine.connect() as connection:
        sent = (await connection.execute(select(messages.c.target, messages.c.path, messages.c.payload))).all()
    assert [(t, p) for t, p, _ in sent] == [("risk", "/v1/risk/internal/staff-events")]
    assert sent[0][2]["kind"] == "quota_near"
    assert sent[0][2]["staff_id"] == reader_id
    # Past the quota, a read of only three records needs an approval...
    response = await vault.http.post(
        "/staff/reads", json={"records": ids[8:11], "purpose": "customer_service", "fields": ["name"]}, headers=reader
    )
    assert response.status_code == 403
    assert response.json()["code"] == "approval_required"
    assert response.json()["operation"] == "vault.over_quota_read"
    # ...and the refused read did not count: with the approval of exactly that read, it goes through.
    approval = vault.permissions.approve("vault.over_quota_read", response.json()["payload"])
    assert await read(ids[8:11], approval) == 200
    async with engine.connect() as connection:
        alerts = (await connection.execute(select(messages.c.idempotency_key))).all()
    await engine.dispose()
    assert len(alerts) == 1  # told once per window


async def test_the_ledger_is_written_before_the_shred_commits(test_databases: TestDatabases, tmp_path: Path) -> None:
    url = await test_databases.clone("vault_test")
    ledger = tmp_path / "missing-dir" / "shred.ledger"  # unwritable: the ledger write fails
    async for vault in start_vault(url, shred_ledger_file=str(ledger)):
        record = await identity_record(vault)
        failed = await vault.shred(record["subject_id"])
        assert failed.status_code >= 500
        # No ledger entry, so no shredding either: the subject's data is still there.
        read = await vault.http.post(
            f"/internal/records/{record['id']}/reads",
            json={"purpose": "authentication", "fields": ["phone"], "unmasked": True},
            headers=vault.service("identity"),
        )
        assert read.status_code == 200
        ledger.parent.mkdir()
        done = await vault.shred(record["subject_id"])
        assert done.json()["shredded"] is True
        # The entry is on disk as soon as the request returns (no background task after the commit).
        assert ledger.read_text().split()[0] == record["subject_id"]


def test_the_ledger_is_mandatory_outside_development() -> None:
    from services.vault.config import require_shred_ledger

    for environment in ("staging", "production"):
        with pytest.raises(ValueError, match="SHRED_LEDGER"):
            require_shred_ledger(environment, None)
        require_shred_ledger(environment, "/worm/shred.ledger")
    require_shred_ledger("development", None)


async def test_an_unlisted_service_learns_nothing_and_is_logged(vault: VaultClient) -> None:
    record = await identity_record(vault)
    for path, body in [
        (f"/internal/records/{record['id']}/reads", {"purpose": "authentication", "fields": ["phone"]}),
        (f"/internal/records/{uuid.uuid4()}/reads", {"purpose": "authentication", "fields": ["phone"]}),
        ("/internal/records", {"not": "even valid"}),
    ]:
        response = await vault.http.post(path, json=body, headers=vault.service("billing"))
        assert response.status_code == 403, response.text  # the same answer whether the record exists or not
        assert response.json()["code"] == "vault_access_denied"
    log = await vault.http.get(
        "/staff/access-log", params={"actor": "billing", "outcome": "denied"}, headers=vault.staff("audit:read")
    )
    assert len(log.json()["entries"]) == 3
