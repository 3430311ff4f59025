"""The vault through the gateway over real HTTP, with the real permissions service deciding.

The whole suite runs (gateway, identity, permissions, vault, risk, incidents).
Tokens: as in the permissions flow test, staff and service tokens are signed
by tests.support.tokens.TestIssuer, and the gateway, permissions and vault
verifiers trust its key (the gateway still verifies every token). The vault's
permission client is the kit's real ``PermissionClient`` calling the real
permissions service through the gateway, carrying a vault service token from
that issuer instead of one fetched from identity. Grants and approvals are made
through the permissions API by a bootstrapped admin and a second person.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from kit.http import ServiceClient
from kit.permissions import PermissionClient
from ops.database import create_database, with_database
from services.permissions.cli import bootstrap_admin
from services.vault.backup import drill
from services.vault.models import Record, RecordField
from tests.support.database import TestDatabases, unique_name
from tests.support.live import live_suite
from tests.support.suite import service_settings, suite_factories
from tests.support.tokens import TestIssuer

pytestmark = pytest.mark.flow

VAULT = "/v1/vault"
PERMISSIONS = "/v1/permissions"
PROFILE = {"name": "张三", "national_id": "11010519491231002X", "phone": "13812345678"}


@dataclass
class Flow:
    client: httpx.AsyncClient
    issuer: TestIssuer
    apps: dict[str, FastAPI]
    database_url: str
    admin: str
    teller: str
    officer: str
    checker: str
    custodian: str
    auditor: str

    def staff(self, subject: str) -> dict[str, str]:
        return self.issuer.headers(subject=subject, kind="staff")

    def service(self, name: str) -> dict[str, str]:
        return self.issuer.headers(subject=name, kind="service", session_id=None)

    async def store(self, fields: Mapping[str, str] = PROFILE) -> dict[str, Any]:
        response = await self.client.post(
            f"{VAULT}/internal/records",
            json={"subject_id": str(uuid.uuid4()), "fields": dict(fields)},
            headers=self.service("identity"),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def read(self, reader: str, record_id: str, fields: list[str], **extra: Any) -> httpx.Response:
        return await self.client.post(
            f"{VAULT}/staff/records/{record_id}/reads",
            json={"purpose": "customer_service", "fields": fields, **extra},
            headers=self.staff(reader),
        )


def capturing(
    factories: Mapping[str, Callable[[Mapping[str, str]], FastAPI]], apps: dict[str, FastAPI]
) -> dict[str, Callable[[Mapping[str, str]], FastAPI]]:
    def wrap(name: str, factory: Callable[[Mapping[str, str]], FastAPI]) -> Callable[[Mapping[str, str]], FastAPI]:
        def build(urls: Mapping[str, str]) -> FastAPI:
            apps[name] = factory(urls)
            return apps[name]

        return build

    return {name: wrap(name, factory) for name, factory in factories.items()}


async def _grant(client: httpx.AsyncClient, issuer: TestIssuer, admin: str, subject: str, role: str) -> None:
    admin_headers = issuer.headers(subject=admin, kind="staff")
    trained = await client.post(
        f"{PERMISSIONS}/staff/trainings",
        json={"subject": subject, "completed_at": datetime.now(UTC).isoformat(), "score": 95},
        headers=admin_headers,
    )
    assert trained.status_code == 201, trained.text
    requested = await client.post(
        f"{PERMISSIONS}/staff/grant-requests",
        json={"subject": subject, "role": role},
        headers=issuer.headers(subject=subject, kind="staff"),
    )
    assert requested.status_code == 201, requested.text
    approved = await client.post(
        f"{PERMISSIONS}/staff/approvals/{requested.json()['id']}/approve", json={"comment": "ok"}, headers=admin_headers
    )
    assert approved.json()["state"] == "executed", approved.text


@pytest.fixture(scope="module")
async def flow(test_databases: TestDatabases) -> AsyncIterator[Flow]:
    url = await test_databases.clone("vault_flow")
    apps: dict[str, FastAPI] = {}
    issuer = TestIssuer()
    overrides = {"vault": {"rewrap_poll_seconds": 0.2}}
    async with live_suite(capturing(suite_factories(url, overrides=overrides), apps)) as suite:
        issuer.install(apps["permissions"])
        issuer.install(apps["vault"])
        apps["gateway"].state.token_verifier.load_jwks(issuer.jwks())
        token = issuer.mint(subject="vault", kind="service", session_id=None, ttl=3600)

        async def vault_token() -> str:
            return token

        service_client = ServiceClient(suite.gateway_url, token_provider=vault_token)
        apps["vault"].state.permission_client = PermissionClient(service_client, cache_seconds=0)
        admin = str(uuid.uuid4())
        async with apps["permissions"].state.database.sessionmaker() as session:
            await bootstrap_admin(session, admin)
            await session.commit()
        apps["permissions"].state.policy_store.mark_stale()
        people = {role: str(uuid.uuid4()) for role in ("teller", "officer", "checker", "custodian", "auditor")}
        async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=15) as client:
            for key, role in (
                ("teller", "teller"),
                ("officer", "compliance_officer"),
                ("checker", "compliance_officer"),
                ("custodian", "system_admin"),
                ("auditor", "auditor"),
            ):
                await _grant(client, issuer, admin, people[key], role)
            yield Flow(client=client, issuer=issuer, apps=apps, database_url=url, admin=admin, **people)
        await service_client.aclose()


async def test_masked_for_a_teller_refused_unmasked_then_read_with_permission_and_logged(flow: Flow) -> None:
    record = await flow.store()
    masked = await flow.read(flow.teller, record["id"], ["name", "national_id", "phone"])
    assert masked.status_code == 200, masked.text
    values = {k: v["value"] for k, v in masked.json()["records"][0]["fields"].items()}
    assert values == {"name": "张*", "national_id": "110***********002X", "phone": "138****5678"}

    refused = await flow.read(flow.teller, record["id"], ["phone"], unmasked=True)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert "vault:decrypt" in refused.json()["detail"]

    clear = await flow.read(flow.officer, record["id"], ["name", "phone"], unmasked=True, reference="CASE-42")
    assert clear.status_code == 200, clear.text
    assert clear.json()["records"][0]["fields"]["phone"]["value"] == "13812345678"

    log = await flow.client.get(
        f"{VAULT}/staff/access-log", params={"subject_id": record["subject_id"]}, headers=flow.staff(flow.auditor)
    )
    assert log.status_code == 200, log.text
    entries = [(e["actor"], e["action"], e["outcome"]) for e in log.json()["entries"]]
    assert entries == [
        (flow.teller, "vault.read", "success"),
        (flow.teller, "vault.decrypt", "denied"),
        (flow.officer, "vault.decrypt", "success"),
    ]
    decrypt = log.json()["entries"][-1]
    assert decrypt["id"] == clear.json()["access_id"]
    assert decrypt["detail"]["fields"] == ["name", "phone"]
    assert decrypt["detail"]["purpose"] == "customer_service"
    assert decrypt["detail"]["grant_id"]
    teller_log = await flow.client.get(f"{VAULT}/staff/access-log", headers=flow.staff(flow.teller))
    assert teller_log.status_code == 403


async def test_sensitive_unmasked_read_with_a_second_persons_approval(flow: Flow) -> None:
    record = await flow.store()
    asked = await flow.read(flow.officer, record["id"], ["national_id"], unmasked=True)
    assert asked.status_code == 403
    assert asked.json()["code"] == "approval_required"
    created = await flow.client.post(
        f"{PERMISSIONS}/staff/approvals",
        json={"operation": asked.json()["operation"], "payload": asked.json()["payload"], "comment": "KYC case"},
        headers=flow.staff(flow.officer),
    )
    assert created.status_code == 201, created.text
    approval_id = created.json()["id"]
    self_approved = await flow.client.post(
        f"{PERMISSIONS}/staff/approvals/{approval_id}/approve", json={}, headers=flow.staff(flow.officer)
    )
    assert self_approved.status_code == 403
    approved = await flow.client.post(
        f"{PERMISSIONS}/staff/approvals/{approval_id}/approve", json={}, headers=flow.staff(flow.checker)
    )
    assert approved.json()["state"] == "approved", approved.text
    # Four reads race with one approval: the permissions service lets exactly one execute it.
    reads = await asyncio.gather(
        *(
            flow.read(flow.officer, record["id"], ["national_id"], unmasked=True, approval_id=approval_id)
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in reads) == [200, 409, 409, 409]
    winner = next(r for r in reads if r.status_code == 200)
    assert winner.json()["records"][0]["fields"]["national_id"]["value"] == "11010519491231002X"
    losers = {r.json()["approval_code"] for r in reads if r.status_code == 409}
    assert losers == {"approval_already_executed"}
    colleague = await flow.read(flow.teller, record["id"], ["national_id"], unmasked=True, approval_id=approval_id)
    assert colleague.status_code == 403


async def test_find_a_customer_by_national_id(flow: Flow) -> None:
    record = await flow.store({"national_id": "110105198506150030", "name": "李四"})
    found = await flow.client.post(
        f"{VAULT}/staff/lookups",
        json={"field": "national_id", "value": "110105198506150030", "purpose": "customer_service"},
        headers=flow.staff(flow.teller),
    )
    assert found.status_code == 200, found.text
    assert [m["subject_id"] for m in found.json()["matches"]] == [record["subject_id"]]


async def test_rotate_read_old_and_new_rewrap_then_retire(flow: Flow) -> None:
    custodian = flow.staff(flow.custodian)
    one_factor = flow.issuer.headers(subject=flow.custodian, kind="staff", acr="aal1", amr=("pwd",))
    weak = await flow.client.post(f"{VAULT}/staff/keys/records/rotate", headers=one_factor)
    assert weak.status_code == 403  # the gateway asks for a second factor before key custody
    old = await flow.store({"phone": "13811112222"})
    rotated = await flow.client.post(f"{VAULT}/staff/keys/records/rotate", headers=custodian)
    assert rotated.status_code == 200, rotated.text
    version = rotated.json()["current_version"]
    new = await flow.store({"phone": "13833334444"})
    for record, phone in ((old, "13811112222"), (new, "13833334444")):
        response = await flow.read(flow.officer, record["id"], ["phone"], unmasked=True)
        assert response.json()["records"][0]["fields"]["phone"]["value"] == phone
    refused = await flow.client.patch(
        f"{VAULT}/staff/keys/records", json={"min_decryption_version": version}, headers=custodian
    )
    assert refused.status_code == 409
    job = (await flow.client.post(f"{VAULT}/staff/keys/records/rewrap", headers=custodian)).json()
    for _ in range(300):  # the background worker polls every 0.2 s here
        progress = await flow.client.get(f"{VAULT}/staff/keys/records/rewrap-jobs/{job['id']}", headers=custodian)
        if progress.json()["state"] == "done":
            break
        await asyncio.sleep(0.1)
    assert progress.json()["state"] == "done"
    for _ in range(100):  # retiring waits until every replica's key cache has seen the new version
        retired = await flow.client.patch(
            f"{VAULT}/staff/keys/records", json={"min_decryption_version": version}, headers=custodian
        )
        if retired.status_code != 409 or retired.json()["code"] != "key_version_too_new":
            break
        await asyncio.sleep(0.1)
    assert retired.status_code == 200, retired.text
    response = await flow.read(flow.officer, old["id"], ["phone"], unmasked=True)
    assert response.json()["records"][0]["fields"]["phone"]["value"] == "13811112222"
    personal_data = await flow.read(flow.custodian, old["id"], ["phone"])
    assert personal_data.status_code == 403  # a system admin manages keys but reads no personal data


async def test_tampered_or_moved_ciphertext_is_an_integrity_error(flow: Flow) -> None:
    record = await flow.store({"name": "王五", "phone": "13855556666"})
    engine = create_async_engine(flow.database_url)
    name_field = (RecordField.record_id == uuid.UUID(record["id"])) & (RecordField.name == "name")
    async with engine.begin() as connection:
        original = (await connection.execute(select(RecordField.ciphertext).where(name_field))).scalar_one()
        phone = (
            await connection.execute(
                select(RecordField.ciphertext).where(
                    RecordField.record_id == uuid.UUID(record["id"]), RecordField.name == "phone"
                )
            )
        ).scalar_one()
        await connection.execute(update(RecordField).where(name_field).values(ciphertext=phone))
    moved = await flow.read(flow.officer, record["id"], ["name"], unmasked=True)
    assert moved.status_code == 409
    assert moved.json()["code"] == "integrity_error"
    still_fine = await flow.read(flow.officer, record["id"], ["phone"], unmasked=True)
    assert still_fine.status_code == 200
    async with engine.begin() as connection:  # put it back for the restore drill below
        await connection.execute(update(RecordField).where(name_field).values(ciphertext=original))
    await engine.dispose()


async def test_shred_a_subject_and_fail_to_read_it(flow: Flow) -> None:
    record = await flow.store()
    shredded = await flow.client.delete(
        f"{VAULT}/internal/subjects/{record['subject_id']}", headers=flow.service("identity")
    )
    assert shredded.json()["shredded"] is True
    gone = await flow.read(flow.officer, record["id"], ["phone"], unmasked=True)
    assert gone.status_code == 410
    assert gone.json()["code"] == "subject_shredded"


async def test_transit_for_a_service_through_the_gateway(flow: Flow) -> None:
    encrypted = await flow.client.post(
        f"{VAULT}/internal/transit/keys/identity-totp/encrypt",
        json={"plaintext": "c2VlZA==", "context": "YWNjb3VudA=="},
        headers=flow.service("identity"),
    )
    assert encrypted.status_code == 200, encrypted.text
    stolen = await flow.client.post(
        f"{VAULT}/internal/transit/keys/identity-totp/decrypt",
        json={"ciphertext": encrypted.json()["ciphertext"], "context": "YWNjb3VudA=="},
        headers=flow.service("risk"),
    )
    assert stolen.status_code == 403
    staff = await flow.client.post(
        f"{VAULT}/internal/transit/keys/identity-totp/decrypt",
        json={"ciphertext": encrypted.json()["ciphertext"]},
        headers=flow.staff(flow.officer),
    )
    assert staff.status_code == 403  # the gateway keeps staff off internal routes


async def test_restore_drill_of_the_flow_database(flow: Flow, test_databases: TestDatabases) -> None:
    for _ in range(3):
        await flow.store()
    # Whatever else the module's earlier tests stored is in the drill too; this test needs only its own.
    engine = create_async_engine(flow.database_url)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(select(func.count()).select_from(Record))
    finally:
        await engine.dispose()
    assert stored is not None
    assert stored >= 3
    name = unique_name("vault_drill")
    await create_database(test_databases.server_url, name)
    test_databases.created.append(name)
    report = await drill(service_settings("vault", flow.database_url), with_database(test_databases.server_url, name))
    assert report.ok, report
    assert report.verify.fields_failed == 0
    assert report.verify.records == stored
    assert report.verify.audit_chain_ok
