"""Root-key rotation: a new root in settings, the old one kept as previous until the KEKs moved."""

from __future__ import annotations

import uuid

from pydantic import SecretStr

from tests.support.database import TestDatabases
from tests.vault.conftest import VaultClient, start_vault


async def read_phone(vault: VaultClient, record_id: str) -> int:
    response = await vault.http.post(
        f"/staff/records/{record_id}/reads",
        json={"purpose": "account_servicing", "fields": ["phone"], "unmasked": True},
        headers=vault.staff("vault:read", "vault:decrypt"),
    )
    return response.status_code


async def test_root_rotation_without_downtime(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("vault_test")
    old_root = {"root_key": SecretStr("first-root-key-material-32-bytes!!"), "root_key_id": "root-1"}
    async for vault in start_vault(url, **old_root):
        stored = await vault.http.post(
            "/staff/records",
            json={"subject_id": str(uuid.uuid4()), "fields": {"phone": "13812345678"}},
            headers=vault.staff("account:modify"),
        )
        record = stored.json()["id"]
        await vault.http.post("/staff/keys/records/rotate", headers=vault.staff("vault:key_rotate"))

    # The new root alone cannot unwrap KEKs wrapped by the old one: a 503 problem, not a 500.
    new_root = {"root_key": SecretStr("second-root-key-material-32-bytes!"), "root_key_id": "root-2"}
    async for vault in start_vault(url, **new_root):
        assert await read_phone(vault, record) == 503

    # New root plus the old one as previous: reads work, then the KEKs move.
    async for vault in start_vault(url, **new_root, previous_root_keys={"root-1": old_root["root_key"]}):
        assert await read_phone(vault, record) == 200
        custodian = vault.staff("vault:key_rotate")
        status = await vault.http.get("/staff/root-key", headers=custodian)
        assert status.json() == {"current": "root-2", "previous_configured": ["root-1"], "kek_versions": {"root-1": 2}}
        moved = await vault.http.post("/staff/root-key/rewrap", headers=custodian)
        assert moved.json() == {"root_key_id": "root-2", "rewrapped": 2, "remaining": 0}
        refused = await vault.http.post("/staff/root-key/rewrap", headers=vault.staff("vault:read"))
        assert refused.status_code == 403

    # The old root can go.
    async for vault in start_vault(url, **new_root):
        assert await read_phone(vault, record) == 200
