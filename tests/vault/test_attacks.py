"""From the attacker's side: forged and expired tokens, wrong kinds of caller, races on keys and data keys."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.vault.models import DataKey, KeyVersion
from tests.support.tokens import TestIssuer
from tests.vault.conftest import VaultClient


async def test_forged_and_expired_tokens_are_refused(vault: VaultClient) -> None:
    forger = TestIssuer(kid=vault.issuer.kid)  # same key id, another key
    body = {"subject_id": str(uuid.uuid4()), "fields": {"phone": "13812345678"}}
    forged = await vault.http.post("/staff/records", json=body, headers=forger.headers(kind="staff"))
    assert forged.status_code == 401
    expired = await vault.http.post("/staff/records", json=body, headers=vault.issuer.headers(kind="staff", ttl=-120))
    assert expired.status_code == 401
    none = await vault.http.post("/staff/records", json=body)
    assert none.status_code == 401


async def test_callers_of_the_wrong_kind_are_refused(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    body = {"subject_id": subject, "fields": {"phone": "13812345678"}}
    customer = vault.customer(subject)
    assert (await vault.http.post("/staff/records", json=body, headers=customer)).status_code == 403
    assert (await vault.http.post("/internal/records", json=body, headers=customer)).status_code == 403
    # A staff token naming itself "identity" is still a staff token.
    staff_named_identity = vault.issuer.headers(subject="identity", kind="staff")
    assert (await vault.http.post("/internal/records", json=body, headers=staff_named_identity)).status_code == 403
    # A service token cannot use the staff routes, whatever its name.
    assert (await vault.http.post("/staff/records", json=body, headers=vault.service("identity"))).status_code == 403


async def test_concurrent_rotations_make_distinct_versions(vault: VaultClient) -> None:
    await vault.http.post(
        "/staff/records",
        json={"subject_id": str(uuid.uuid4()), "fields": {"phone": "13812345678"}},
        headers=vault.staff("account:modify"),
    )
    custodian = vault.staff("vault:key_rotate")
    results = await asyncio.gather(
        *(vault.http.post("/staff/keys/records/rotate", headers=custodian) for _ in range(5))
    )
    assert sorted(r.json()["current_version"] for r in results) == [2, 3, 4, 5, 6]
    engine = create_async_engine(vault.database_url)
    async with engine.connect() as connection:
        versions = sorted((await connection.execute(select(KeyVersion.version))).scalars())
    await engine.dispose()
    assert versions == [1, 2, 3, 4, 5, 6]


async def test_concurrent_first_stores_share_one_data_key(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    writer = vault.staff("account:modify")
    results = await asyncio.gather(
        *(
            vault.http.post(
                "/staff/records", json={"subject_id": subject, "fields": {"phone": f"1381234567{i}"}}, headers=writer
            )
            for i in range(6)
        )
    )
    assert [r.status_code for r in results] == [201] * 6
    engine = create_async_engine(vault.database_url)
    async with engine.connect() as connection:
        keys = await connection.scalar(select(func.count()).select_from(DataKey))
    await engine.dispose()
    assert keys == 1
    reader = vault.staff("vault:read", "vault:decrypt")
    for i, response in enumerate(results):
        read = await vault.http.post(
            f"/staff/records/{response.json()['id']}/reads",
            json={"purpose": "customer_service", "fields": ["phone"], "unmasked": True},
            headers=reader,
        )
        assert read.json()["records"][0]["fields"]["phone"]["value"] == f"1381234567{i}"


async def test_shredding_races_with_reads_never_leak(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    stored = await vault.http.post(
        "/staff/records",
        json={"subject_id": subject, "fields": {"phone": "13812345678"}},
        headers=vault.staff("account:modify"),
    )
    record = stored.json()["id"]
    reader = vault.staff("vault:read", "vault:decrypt")

    async def read() -> int:
        response = await vault.http.post(
            f"/staff/records/{record}/reads",
            json={"purpose": "customer_service", "fields": ["phone"], "unmasked": True},
            headers=reader,
        )
        return response.status_code

    shred = vault.shred(subject)
    outcomes = await asyncio.gather(read(), read(), shred, read(), read())
    statuses = [o if isinstance(o, int) else o.status_code for o in outcomes]
    assert set(statuses) <= {200, 410}
    assert await read() == 410
