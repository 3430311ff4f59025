"""Rotation without downtime: new version for new writes, old still decrypts, rewrap, retirement, SM4."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from services.vault.models import DataKey, KeyVersion
from tests.support.database import TestDatabases
from tests.vault.conftest import VaultClient, start_vault


async def store(vault: VaultClient, phone: str, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"subject_id": str(uuid.uuid4()), "fields": {"phone": phone}}
    if key:
        body["key"] = key
    response = await vault.http.post("/staff/records", json=body, headers=vault.staff("account:modify"))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def phone_of(vault: VaultClient, record_id: str) -> str:
    response = await vault.http.post(
        f"/staff/records/{record_id}/reads",
        json={"purpose": "account_servicing", "fields": ["phone"], "unmasked": True},
        headers=vault.staff("vault:read", "vault:decrypt"),
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["records"][0]["fields"]["phone"]["value"]
    return value


async def kek_versions(vault: VaultClient) -> list[int]:
    engine = create_async_engine(vault.database_url)
    async with engine.connect() as connection:
        versions = sorted((await connection.execute(select(DataKey.kek_version))).scalars().all())
    await engine.dispose()
    return versions


async def test_rotate_rewrap_and_retire(vault: VaultClient) -> None:
    custodian = vault.staff("vault:key_rotate")
    old = await store(vault, "13811111111")
    rotated = await vault.http.post("/staff/keys/records/rotate", headers=custodian)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["current_version"] == 2
    new = await store(vault, "13822222222")
    assert await kek_versions(vault) == [1, 2]
    assert await phone_of(vault, old["id"]) == "13811111111"
    assert await phone_of(vault, new["id"]) == "13822222222"

    early = await vault.http.patch("/staff/keys/records", json={"min_decryption_version": 2}, headers=custodian)
    assert early.status_code == 409
    assert early.json()["code"] == "key_version_in_use"
    assert early.json()["outstanding"] == 1

    started = await vault.http.post("/staff/keys/records/rewrap", headers=custodian)
    assert started.status_code == 202
    job = started.json()
    assert (job["state"], job["total"], job["done"]) == ("running", 1, 0)
    await vault.app.state.rewrap_worker.drain()
    progress = await vault.http.get(f"/staff/keys/records/rewrap-jobs/{job['id']}", headers=custodian)
    assert progress.json()["state"] == "done"
    assert progress.json()["progress"] == 1.0
    assert await kek_versions(vault) == [2, 2]

    retired = await vault.http.patch("/staff/keys/records", json={"min_decryption_version": 2}, headers=custodian)
    assert retired.status_code == 200, retired.text
    versions = {v["version"]: v for v in retired.json()["versions"]}
    assert versions[1]["retired"] is True
    assert versions[2]["data_keys"] == 2
    # Old and new records still read after the old version is retired: their keys moved.
    assert await phone_of(vault, old["id"]) == "13811111111"
    assert await phone_of(vault, new["id"]) == "13822222222"

    log = await vault.http.get("/staff/access-log", params={"all_actions": "true"}, headers=vault.staff("audit:read"))
    actions = [e["action"] for e in log.json()["entries"]]
    for action in (
        "vault.key.rotate",
        "vault.key.rewrap_started",
        "vault.key.rewrap_completed",
        "vault.key.min_decryption_version",
    ):
        assert action in actions


async def test_rewrap_progresses_in_batches(vault: VaultClient) -> None:
    custodian = vault.staff("vault:key_rotate")
    for i in range(5):
        await store(vault, f"1380000000{i}")
    await vault.http.post("/staff/keys/records/rotate", headers=custodian)
    job = (await vault.http.post("/staff/keys/records/rewrap", headers=custodian)).json()
    worker = vault.app.state.rewrap_worker
    worker.batch_size = 2
    assert await worker.step()
    halfway = (await vault.http.get(f"/staff/keys/records/rewrap-jobs/{job['id']}", headers=custodian)).json()
    assert (halfway["state"], halfway["done"], halfway["total"]) == ("running", 2, 5)
    await worker.drain()
    done = (await vault.http.get(f"/staff/keys/records/rewrap-jobs/{job['id']}", headers=custodian)).json()
    assert (done["state"], done["done"]) == ("done", 5)
    again = await vault.http.post("/staff/keys/records/rewrap", headers=custodian)
    assert again.json()["state"] == "done"
    assert again.json()["total"] == 0


async def test_key_management_needs_the_custodian_permission(vault: VaultClient) -> None:
    await store(vault, "13811111111")
    for headers in (vault.staff("vault:read", "vault:decrypt"), vault.service("identity")):
        assert (await vault.http.post("/staff/keys/records/rotate", headers=headers)).status_code == 403
    out_of_range = await vault.http.patch(
        "/staff/keys/records", json={"min_decryption_version": 5}, headers=vault.staff("vault:key_rotate")
    )
    assert out_of_range.status_code == 400
    assert (
        await vault.http.post("/staff/keys/nope/rotate", headers=vault.staff("vault:key_rotate"))
    ).status_code == 404


async def test_sm4_gcm_records_key(vault: VaultClient) -> None:
    custodian = vault.staff("vault:key_rotate")
    created = await vault.http.post(
        "/staff/keys", json={"name": "records-sm4", "purpose": "records", "algorithm": "sm4-gcm"}, headers=custodian
    )
    assert created.status_code == 201, created.text
    assert created.json()["algorithm"] == "sm4-gcm"
    record = await store(vault, "13833333333", key="records-sm4")
    assert await phone_of(vault, record["id"]) == "13833333333"
    engine = create_async_engine(vault.database_url)
    async with engine.connect() as connection:
        algorithms = set((await connection.execute(select(DataKey.algorithm))).scalars())
        wrapped = (await connection.execute(select(KeyVersion.wrapped_key))).scalars().all()
    await engine.dispose()
    assert algorithms == {"sm4-gcm"}
    # A 16-byte SM4 key wrapped: nonce + key + tag.
    assert {len(w) for w in wrapped} == {12 + 16 + 16}
    await vault.http.post("/staff/keys/records-sm4/rotate", headers=custodian)
    assert await phone_of(vault, record["id"]) == "13833333333"
    duplicate = await vault.http.post(
        "/staff/keys", json={"name": "records-sm4", "purpose": "records"}, headers=custodian
    )
    assert duplicate.status_code == 409
    transit_as_records = await vault.http.post(
        "/staff/keys", json={"name": "t1", "purpose": "transit", "owner": "identity"}, headers=custodian
    )
    assert transit_as_records.status_code == 201
    refused = await vault.http.post(
        "/staff/records",
        json={"subject_id": str(uuid.uuid4()), "fields": {"phone": "13811111111"}, "key": "t1"},
        headers=vault.staff("account:modify"),
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "key_purpose_mismatch"


async def test_another_replica_sees_a_rotation_after_its_cache_period(vault: VaultClient) -> None:
    """Two key stores on one database: the second picks up version 2 once its cache expires."""
    from services.vault.crypto.root import LocalRootKey
    from services.vault.keys.service import KeyStore

    await store(vault, "13811111111")
    now = [0.0]
    settings = vault.app.state.settings
    replica = KeyStore(
        LocalRootKey(settings.root_key.get_secret_value(), settings.root_key_id),
        cache_seconds=2.0,
        clock=lambda: now[0],
    )
    sessionmaker = vault.app.state.database.sessionmaker
    async with sessionmaker() as session:
        assert (await replica.get(session, "records")).current_version == 1
    await vault.http.post("/staff/keys/records/rotate", headers=vault.staff("vault:key_rotate"))
    async with sessionmaker() as session:
        assert (await replica.get(session, "records")).current_version == 1
        now[0] = 2.5
        assert (await replica.get(session, "records")).current_version == 2


async def test_a_version_is_retired_only_after_every_replica_can_know_it(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("vault_test")
    async for vault in start_vault(url, key_cache_seconds=30.0):
        custodian = vault.staff("vault:key_rotate")
        await store(vault, "13811111111")
        await vault.http.post("/staff/keys/records/rotate", headers=custodian)
        job = (await vault.http.post("/staff/keys/records/rewrap", headers=custodian)).json()
        await vault.app.state.rewrap_worker.drain()
        assert (await vault.http.get(f"/staff/keys/records/rewrap-jobs/{job['id']}", headers=custodian)).json()[
            "state"
        ] == "done"
        early = await vault.http.patch("/staff/keys/records", json={"min_decryption_version": 2}, headers=custodian)
        assert early.status_code == 409
        assert early.json()["code"] == "key_version_too_new"
        assert 1 <= int(early.headers["retry-after"]) <= 30
