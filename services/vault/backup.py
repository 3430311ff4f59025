"""Encrypted logical backup, restore into an empty database, and the restore drill.

``python -m services.vault.backup backup --out vault.bak``
``python -m services.vault.backup restore --in vault.bak --target-url postgresql://.../vault_restore``
``python -m services.vault.backup drill --target-url postgresql://.../vault_drill``

The backup is one consistent snapshot (a REPEATABLE READ, READ ONLY
transaction) of every vault table, the audit chain included, written as:

    magic "VAULTBK1" | u32 header length | header (JSON, plaintext, authenticated)
    frames: u32 length | nonce (12) | AES-256-GCM(zlib(JSON lines)) + tag

Each frame's associated data is SHA-256(header) || frame index || last-frame
flag, so frames cannot be reordered, dropped, spliced from another backup or
truncated without the restore noticing. The backup key is derived from the
``backup_key`` setting, which lives apart from the database. The content
also stays wrapped by the key hierarchy: restoring needs the same root key.

Restore is all-or-nothing (one transaction) and refuses a non-empty vault
schema. It then re-applies the shred ledger (``shred_ledger_file``): a
subject shredded after the backup was taken is shredded again before the
restored database serves anything, so a backup cannot bring it back.

This is the portable, application-level backup (and the drill's subject).
Production runs continuous WAL archiving with CloudNativePG as well (see
README, section Vault): that is what gives the RPO of minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import struct
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine
from sqlalchemy.sql.sqltypes import DateTime, LargeBinary, Uuid

from kit.audit import signing_key_from_secret
from kit.db import make_sessionmaker
from kit.migrations import upgrade
from services.vault.config import VaultSettings
from services.vault.crypto.root import derive_key
from services.vault.errors import RestoreRefused, StoredIntegrity, SubjectShredded
from services.vault.models import SCHEMA, Base, DataKey, Record, RecordField, Subject, audit_log
from services.vault.records.service import LoadedRecord, RecordService, read_ledger
from services.vault.state import Vault

MAGIC = b"VAULTBK1"
FORMAT_VERSION = 1
FRAME_ROWS = 2000
MIGRATIONS = Path(__file__).parent / "migrations"
#: Parents before children, so foreign keys hold while rows are inserted.
TABLES = (
    "key_ring",
    "key_version",
    "subject",
    "data_key",
    "record",
    "record_field",
    "rewrap_job",
    "audit_entry",
    "audit_head",
    "audit_checkpoint",
    "outbox_message",
    "inbox_message",
)
RPO_TARGET_SECONDS = 300
RTO_TARGET_SECONDS = 1800


class BackupCorrupt(Exception):
    """The backup file is not intact (wrong key, edited, truncated or not a vault backup)."""


def backup_cipher(settings: VaultSettings) -> AESGCM:
    return AESGCM(derive_key(settings.backup_key.get_secret_value().encode(), "vault-backup"))


def _table(name: str) -> Table:
    return Base.metadata.tables[f"{SCHEMA}.{name}"]


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decoder(table: Table) -> dict[str, Any]:
    converters: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, LargeBinary):
            converters[column.name] = base64.b64decode
        elif isinstance(column.type, DateTime):
            converters[column.name] = dt.datetime.fromisoformat
        elif isinstance(column.type, Uuid):
            converters[column.name] = uuid.UUID
    return converters


def _frame_aad(header_digest: bytes, index: int, last: bool) -> bytes:
    return header_digest + struct.pack(">Q?", index, last)


@dataclass
class BackupInfo:
    backup_id: str
    taken_at: str
    tables: dict[str, int]
    latest_write_at: str | None
    path: str = ""
    bytes: int = 0
    seconds: float = 0.0


async def _latest_write(connection: AsyncConnection) -> dt.datetime | None:
    """The newest change visible: last audit entry or record update (every write audits)."""
    audit = await connection.scalar(select(func.max(audit_log.entries.c.occurred_at)))
    record = await connection.scalar(select(func.max(Record.updated_at)))
    found = [t for t in (audit, record) if t is not None]
    return max(found) if found else None


async def take_backup(settings: VaultSettings, out: Path) -> BackupInfo:
    """Write an encrypted snapshot of the vault schema to ``out``."""
    started = time.perf_counter()
    engine = create_async_engine(settings.database_url.get_secret_value())
    cipher = backup_cipher(settings)
    try:
        async with engine.connect() as raw:
            connection = await raw.execution_options(isolation_level="REPEATABLE READ")
            await connection.execute(text("SET TRANSACTION READ ONLY"))
            taken_at: dt.datetime = await connection.scalar(text("SELECT now()"))
            counts = {
                name: int(await connection.scalar(select(func.count()).select_from(_table(name))) or 0)
                for name in TABLES
            }
            latest = await _latest_write(connection)
            info = BackupInfo(
                backup_id=str(uuid.uuid4()),
                taken_at=taken_at.isoformat(),
                tables=counts,
                latest_write_at=latest.isoformat() if latest else None,
            )
            header = json.dumps(
                {"format": "bank-suite-vault-backup", "version": FORMAT_VERSION, **asdict(info)} | {"path": None},
                sort_keys=True,
            ).encode()
            digest = hashlib.sha256(header).digest()
            tmp = out.with_name(out.name + ".partial")
            with tmp.open("wb") as fh:
                fh.write(MAGIC + struct.pack(">I", len(header)) + header)
                chunks = _chunks(connection)
                index = 0
                pending = await anext(chunks, None)
                while pending is not None:
                    following = await anext(chunks, None)
                    nonce = os.urandom(12)
                    sealed = cipher.encrypt(
                        nonce, zlib.compress(pending, 6), _frame_aad(digest, index, following is None)
                    )
                    fh.write(struct.pack(">I", len(sealed) + 12) + nonce + sealed)
                    index += 1
                    pending = following
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(out)
            await connection.rollback()
    finally:
        await engine.dispose()
    info.path = str(out)
    info.bytes = await asyncio.to_thread(os.path.getsize, out)
    info.seconds = round(time.perf_counter() - started, 3)
    return info


async def _chunks(connection: AsyncConnection) -> AsyncIterator[bytes]:
    """JSON lines of every table, ``FRAME_ROWS`` rows per chunk; always at least one chunk."""
    lines: list[bytes] = []
    for name in TABLES:
        table = _table(name)
        order = list(table.primary_key.columns)
        result = await connection.stream(select(table).order_by(*order))
        async for row in result:
            record = {k: _encode(v) for k, v in row._mapping.items()}
            lines.append(json.dumps({"t": name, "r": record}, ensure_ascii=False).encode())
            if len(lines) >= FRAME_ROWS:
                yield b"\n".join(lines)
                lines = []
    yield b"\n".join(lines)


def read_backup(
    source: IO[bytes], settings: VaultSettings
) -> tuple[dict[str, Any], Iterator[tuple[str, dict[str, Any]]]]:
    """Parse and authenticate a backup; yields (table, row) pairs. Raises BackupCorrupt."""
    if source.read(len(MAGIC)) != MAGIC:
        raise BackupCorrupt("not a vault backup")
    (length,) = struct.unpack(">I", source.read(4))
    header_bytes = source.read(length)
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:
        raise BackupCorrupt("unreadable header") from exc
    if header.get("version") != FORMAT_VERSION:
        raise BackupCorrupt(f"unsupported backup format {header.get('version')}")
    digest = hashlib.sha256(header_bytes).digest()
    cipher = backup_cipher(settings)
    decoders = {name: _decoder(_table(name)) for name in TABLES}

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        index = 0
        while True:
            size_bytes = source.read(4)
            if len(size_bytes) < 4:
                raise BackupCorrupt("the backup ends before its last frame (truncated)")
            (size,) = struct.unpack(">I", size_bytes)
            frame = source.read(size)
            if len(frame) != size:
                raise BackupCorrupt("a frame is cut short (truncated)")
            nonce, sealed = frame[:12], frame[12:]
            last = False
            try:
                plain = cipher.decrypt(nonce, sealed, _frame_aad(digest, index, False))
            except InvalidTag:
                try:
                    plain = cipher.decrypt(nonce, sealed, _frame_aad(digest, index, True))
                    last = True
                except InvalidTag as exc:
                    raise BackupCorrupt(f"frame {index} failed authentication (wrong key or altered)") from exc
            for line in zlib.decompress(plain).splitlines():
                if not line:
                    continue
                item = json.loads(line)
                name, row = item["t"], item["r"]
                for column, convert in decoders[name].items():
                    if row.get(column) is not None:
                        row[column] = convert(row[column])
                yield name, row
            if last:
                return
            index += 1

    return header, rows()


@dataclass
class RestoreInfo:
    backup_id: str
    taken_at: str
    rows: dict[str, int] = field(default_factory=dict)
    reshredded: int = 0
    seconds: float = 0.0


async def _ensure_empty(session: AsyncSession) -> None:
    for name in TABLES:
        count = await session.scalar(select(func.count()).select_from(_table(name)))
        if count:
            raise RestoreRefused(f"the target vault schema is not empty ({name} has rows); restore needs an empty one")


async def _apply_ledger(session: AsyncSession, shredded: set[uuid.UUID]) -> int:
    """Shred again every subject the ledger names that the restored data still holds keys for."""
    if not shredded:
        return 0
    alive = set(
        (
            await session.execute(select(Subject.id).where(Subject.id.in_(shredded), Subject.shredded_at.is_(None)))
        ).scalars()
    )
    if not alive:
        return 0
    now = dt.datetime.now(dt.UTC)
    records = select(Record.id).where(Record.subject_id.in_(alive)).scalar_subquery()
    await session.execute(update(RecordField).where(RecordField.record_id.in_(records)).values(blind_index=None))
    await session.execute(update(Record).where(Record.subject_id.in_(alive)).values(data_key_id=None))
    await session.execute(delete(DataKey).where(DataKey.subject_id.in_(alive)))
    await session.execute(update(Subject).where(Subject.id.in_(alive)).values(shredded_at=now))
    return len(alive)


async def restore(settings: VaultSettings, backup: Path, target_url: str, *, ledger: Path | None = None) -> RestoreInfo:
    """Restore ``backup`` into the (empty) vault schema at ``target_url``, migrating it first."""
    started = time.perf_counter()
    await asyncio.to_thread(upgrade, MIGRATIONS, target_url, SCHEMA)
    engine = create_async_engine(target_url)
    try:
        async with make_sessionmaker(engine)() as session:
            await _ensure_empty(session)
            with backup.open("rb") as fh:
                header, rows = read_backup(fh, settings)
                info = RestoreInfo(backup_id=header["backup_id"], taken_at=header["taken_at"])
                batch: list[dict[str, Any]] = []
                current: str | None = None
                for name, row in rows:
                    if name != current and batch:
                        await session.execute(insert(_table(current or name)), batch)
                        batch = []
                    current = name
                    batch.append(row)
                    info.rows[name] = info.rows.get(name, 0) + 1
                    if len(batch) >= 1000:
                        await session.execute(insert(_table(name)), batch)
                        batch = []
                if batch and current is not None:
                    await session.execute(insert(_table(current)), batch)
            if info.rows != {k: v for k, v in header["tables"].items() if v}:
                raise BackupCorrupt("the rows restored do not match the counts the backup announced")
            ledger_path = ledger or (Path(settings.shred_ledger_file) if settings.shred_ledger_file else None)
            info.reshredded = await _apply_ledger(session, read_ledger(ledger_path) if ledger_path else set())
            await audit_log.append(
                session,
                actor="vault-restore",
                actor_kind="service",
                action="vault.restore",
                target=info.backup_id,
                detail={"taken_at": info.taken_at, "rows": info.rows, "reshredded": info.reshredded},
            )
            await session.commit()
    finally:
        await engine.dispose()
    info.seconds = round(time.perf_counter() - started, 3)
    return info


@dataclass
class VerifyInfo:
    records: int = 0
    fields_ok: int = 0
    fields_shredded: int = 0
    fields_failed: int = 0
    audit_chain_ok: bool = False
    audit_entries: int = 0
    seconds: float = 0.0


async def verify(settings: VaultSettings, database_url: str) -> VerifyInfo:
    """Decrypt every stored value (keys from the root down) and walk the audit chain."""
    started = time.perf_counter()
    info = VerifyInfo()
    engine = create_async_engine(database_url)
    vault = Vault.from_settings(settings)
    service = RecordService(vault)
    try:
        async with make_sessionmaker(engine)() as session:
            ids = list((await session.execute(select(Record.id).order_by(Record.created_at))).scalars())
            for offset in range(0, len(ids), 500):
                for loaded in await service.load(session, ids=ids[offset : offset + 500]):
                    info.records += 1
                    await _verify_record(session, service, loaded, info)
            key = signing_key_from_secret(settings.audit_signing_key.get_secret_value())
            report = await audit_log.verify(session, key.public_key())
            info.audit_chain_ok = report.ok
            info.audit_entries = report.entries_checked
    finally:
        await engine.dispose()
    info.seconds = round(time.perf_counter() - started, 3)
    return info


async def _verify_record(session: AsyncSession, service: RecordService, loaded: LoadedRecord, info: VerifyInfo) -> None:
    if loaded.shredded:
        info.fields_shredded += len(loaded.fields)
        return
    for name in loaded.fields:
        try:
            await service.decrypt(session, loaded, [name])
            info.fields_ok += 1
        except (StoredIntegrity, SubjectShredded):
            info.fields_failed += 1


@dataclass
class DrillReport:
    backup: BackupInfo
    restore: RestoreInfo
    verify: VerifyInfo
    rto_seconds: float
    rpo_seconds: float
    rto_target_seconds: int = RTO_TARGET_SECONDS
    rpo_target_seconds: int = RPO_TARGET_SECONDS
    ok: bool = False


async def drill(
    settings: VaultSettings, target_url: str, *, backup_file: Path | None = None, ledger: Path | None = None
) -> DrillReport:
    """Restore drill: (take a backup,) restore it into an empty database, verify, report RTO and RPO.

    RTO is the time from starting the restore to a verified database (what an
    outage would last with this backup at hand). RPO is how much of the source's
    history the backup misses at the moment the drill restores: the newest write
    in the source minus the backup's snapshot time (0 when nothing was written
    since).
    """
    workdir = None
    if backup_file is None:
        workdir = tempfile.TemporaryDirectory(prefix="vault-drill-")
        backup_file = Path(workdir.name) / "vault.bak"
        backup_info = await take_backup(settings, backup_file)
    else:
        with backup_file.open("rb") as fh:
            header, _ = read_backup(fh, settings)
        backup_info = BackupInfo(
            backup_id=header["backup_id"],
            taken_at=header["taken_at"],
            tables=header["tables"],
            latest_write_at=header["latest_write_at"],
            path=str(backup_file),
            bytes=backup_file.stat().st_size,
        )
    try:
        source_engine = create_async_engine(settings.database_url.get_secret_value())
        try:
            async with source_engine.connect() as connection:
                source_latest = await _latest_write(connection)
        finally:
            await source_engine.dispose()
        restored = await restore(settings, backup_file, target_url, ledger=ledger)
        checked = await verify(settings, target_url)
    finally:
        if workdir is not None:
            workdir.cleanup()
    snapshot = dt.datetime.fromisoformat(backup_info.taken_at)
    rpo = max(0.0, (source_latest - snapshot).total_seconds()) if source_latest else 0.0
    rto = round(restored.seconds + checked.seconds, 3)
    report = DrillReport(backup_info, restored, checked, rto_seconds=rto, rpo_seconds=round(rpo, 3))
    report.ok = (
        checked.fields_failed == 0
        and checked.audit_chain_ok
        and rto <= RTO_TARGET_SECONDS
        and rpo <= RPO_TARGET_SECONDS
    )
    return report


def _settings(database_url: str | None) -> VaultSettings:
    settings = VaultSettings()
    if database_url:
        settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.vault.backup", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="source database (default: VAULT_DATABASE_URL / SUITE_DATABASE_URL)")
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("backup", help="write an encrypted backup")
    take.add_argument("--out", type=Path, required=True)
    put = sub.add_parser("restore", help="restore a backup into an empty database")
    put.add_argument("--in", dest="source", type=Path, required=True)
    put.add_argument("--target-url", required=True)
    put.add_argument("--shred-ledger", type=Path)
    run = sub.add_parser("drill", help="backup (or use --in), restore into an empty database, verify, report RTO/RPO")
    run.add_argument("--in", dest="source", type=Path)
    run.add_argument("--target-url", required=True)
    run.add_argument("--shred-ledger", type=Path)
    args = parser.parse_args(argv)
    settings = _settings(args.database_url)
    result: Any
    if args.command == "backup":
        result = asyncio.run(take_backup(settings, args.out))
    elif args.command == "restore":
        result = asyncio.run(restore(settings, args.source, args.target_url, ledger=args.shred_ledger))
    else:
        result = asyncio.run(drill(settings, args.target_url, backup_file=args.source, ledger=args.shred_ledger))
    print(json.dumps(asdict(result), indent=2, default=str))
    return 0 if not isinstance(result, DrillReport) or result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
