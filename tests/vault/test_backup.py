"""Encrypted backup, restore into an empty database, the restore drill and the shred ledger."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from ops.database import create_database, with_database
from services.vault.backup import BackupCorrupt, drill, main, read_backup, restore, take_backup, verify
from services.vault.config import VaultSettings
from services.vault.errors import RestoreRefused
from tests.support.database import TestDatabases, unique_name
from tests.vault.conftest import VaultClient, start_vault


async def empty_database(test_databases: TestDatabases) -> str:
    name = unique_name("vault_restore")
    await create_database(test_databases.server_url, name)
    test_databases.created.append(name)
    return with_database(test_databases.server_url, name)


def settings_for(url: str, **overrides: Any) -> VaultSettings:
    return VaultSettings(environment="test", database_url=SecretStr(url), **overrides)


async def fill(vault: VaultClient, subjects: int = 3) -> list[dict[str, Any]]:
    records = []
    for i in range(subjects):
        response = await vault.http.post(
            "/staff/records",
            json={"subject_id": str(uuid.uuid4()), "fields": {"name": f"赵{i}", "phone": f"1370000000{i}"}},
            headers=vault.staff("account:modify"),
        )
        assert response.status_code == 201
        records.append(response.json())
    return records


async def test_restore_drill_reports_rto_and_rpo(vault: VaultClient, test_databases: TestDatabases) -> None:
    records = await fill(vault)
    await vault.http.post("/staff/keys/records/rotate", headers=vault.staff("vault:key_rotate"))
    await fill(vault, 2)
    target = await empty_database(test_databases)
    report = await drill(settings_for(vault.database_url), target)
    assert report.ok, report
    assert report.verify.records == 5
    assert report.verify.fields_ok == 10
    assert report.verify.fields_failed == 0
    assert report.verify.audit_chain_ok
    assert report.rpo_seconds == 0.0
    assert 0 < report.rto_seconds <= report.rto_target_seconds
    assert report.restore.rows["record"] == 5
    # The restored database serves the data through the app.
    async for restored in start_vault(target):
        response = await restored.http.post(
            f"/staff/records/{records[0]['id']}/reads",
            json={"purpose": "internal_audit", "fields": ["phone"], "unmasked": True},
            headers=restored.staff("vault:read", "vault:decrypt"),
        )
        assert response.json()["records"][0]["fields"]["phone"]["value"] == "13700000000"


async def test_rpo_counts_writes_after_the_snapshot(
    vault: VaultClient, test_databases: TestDatabases, tmp_path: Path
) -> None:
    await fill(vault, 1)
    settings = settings_for(vault.database_url)
    backup = tmp_path / "vault.bak"
    await take_backup(settings, backup)
    await fill(vault, 1)
    report = await drill(settings, await empty_database(test_databases), backup_file=backup)
    assert report.rpo_seconds > 0
    assert report.verify.records == 1


async def test_the_backup_file_is_encrypted_and_authenticated(
    vault: VaultClient, test_databases: TestDatabases, tmp_path: Path
) -> None:
    await fill(vault)
    settings = settings_for(vault.database_url)
    backup = tmp_path / "vault.bak"
    info = await take_backup(settings, backup)
    assert info.tables["record"] == 3
    data = backup.read_bytes()
    # Only the header (ids, time, row counts) is in clear; no row is.
    assert b"rec_" not in data
    assert b'"t": "record' not in data
    with backup.open("rb") as fh:
        _, rows = read_backup(fh, settings_for(vault.database_url, backup_key=SecretStr("another-backup-key")))
        with pytest.raises(BackupCorrupt):
            list(rows)
    flipped = bytearray(data)
    flipped[-5] ^= 1
    (tmp_path / "flipped.bak").write_bytes(bytes(flipped))
    (tmp_path / "cut.bak").write_bytes(data[: len(data) - 40])
    for name in ("flipped.bak", "cut.bak"):
        target = await empty_database(test_databases)
        with pytest.raises(BackupCorrupt):
            await restore(settings, tmp_path / name, target)
        # All or nothing: the failed restore left the target empty, so a good one still goes in.
        restored = await restore(settings, backup, target)
        assert restored.rows["record"] == 3


async def test_restore_refuses_a_database_that_holds_data(vault: VaultClient, tmp_path: Path) -> None:
    await fill(vault, 1)
    settings = settings_for(vault.database_url)
    await take_backup(settings, tmp_path / "vault.bak")
    with pytest.raises(RestoreRefused):
        await restore(settings, tmp_path / "vault.bak", vault.database_url)


async def test_a_subject_shredded_after_the_backup_stays_shredded(
    test_databases: TestDatabases, tmp_path: Path
) -> None:
    source = await test_databases.clone("vault_test")
    ledger = tmp_path / "shred.ledger"
    async for vault in start_vault(source, shred_ledger_file=str(ledger)):
        records = await fill(vault, 2)
        settings = settings_for(source, shred_ledger_file=str(ledger))
        await take_backup(settings, tmp_path / "before.bak")
        gone = records[0]["subject_id"]
        shredded = await vault.shred(gone)
        assert shredded.json()["shredded"] is True
    assert ledger.read_text().split()[0] == records[0]["subject_id"]
    target = await empty_database(test_databases)
    restored = await restore(settings, tmp_path / "before.bak", target)
    assert restored.reshredded == 1
    checked = await verify(settings, target)
    assert (checked.fields_ok, checked.fields_shredded, checked.fields_failed) == (2, 2, 0)
    async for vault in start_vault(target):
        response = await vault.http.post(
            f"/staff/records/{records[0]['id']}/reads",
            json={"purpose": "internal_audit", "fields": ["phone"]},
            headers=vault.staff("vault:read"),
        )
        assert response.status_code == 410


async def test_the_command_line(
    vault: VaultClient, test_databases: TestDatabases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    await fill(vault, 1)
    monkeypatch.setenv("VAULT_ENVIRONMENT", "test")
    monkeypatch.setenv("VAULT_DATABASE_URL", vault.database_url)
    backup = tmp_path / "cli.bak"
    assert await _run(["backup", "--out", str(backup)]) == 0
    assert backup.exists()
    target = await empty_database(test_databases)
    assert await _run(["drill", "--in", str(backup), "--target-url", target]) == 0
    output = capsys.readouterr().out
    assert '"rto_seconds"' in output
    assert '"rpo_seconds"' in output


async def _run(argv: list[str]) -> int:
    import asyncio

    # The command runs its own event loop, so it goes to a thread here.
    return await asyncio.to_thread(main, argv)
