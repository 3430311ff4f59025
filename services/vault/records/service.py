"""Personal-data records: store, update, decrypt, blind-index lookup and crypto-shredding.

Each subject has one data key per records ring; every value is sealed with
it under associated data ``vault-field:v1:<record id>:<field name>``, so a
ciphertext copied to another record or field fails authentication instead of
decrypting as someone else's data. The data key itself is wrapped with
associated data naming its subject and ring.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.vault.catalogue import FieldType, InvalidFieldValue, prepare
from services.vault.crypto.aead import Aead, Algorithm, IntegrityError
from services.vault.errors import (
    InvalidField,
    KeyNotFound,
    KeyPurposeMismatch,
    RecordNotFound,
    StoredIntegrity,
    SubjectShredded,
)
from services.vault.keys.service import KeyStore, LoadedRing, Purpose, dek_aad
from services.vault.models import DataKey, KeyRing, Record, RecordField, Subject
from services.vault.state import Vault


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(18)}"


def field_aad(record_id: uuid.UUID, name: str) -> bytes:
    return f"vault-field:v1:{record_id}:{name}".encode()


@dataclass(slots=True)
class LoadedRecord:
    record: Record
    fields: dict[str, RecordField]
    shredded: bool


@dataclass(frozen=True, slots=True)
class Integrity:
    """Where a stored value failed authentication (ids only)."""

    record_id: uuid.UUID
    field: str


class StoredIntegrityAt(StoredIntegrity):
    def __init__(self, where: Integrity) -> None:
        super().__init__(
            "a stored value failed its integrity check (tampered or moved)",
            record_id=str(where.record_id),
            field=where.field,
        )
        self.where = where


def validate_fields(values: dict[str, str]) -> dict[str, tuple[FieldType, str]]:
    prepared: dict[str, tuple[FieldType, str]] = {}
    errors: list[dict[str, str]] = []
    for name, value in values.items():
        try:
            prepared[name] = prepare(name, value)
        except InvalidFieldValue as exc:
            errors.append({"field": name, "reason": str(exc)})
    if errors:
        raise InvalidField("one or more field values are not valid", errors=errors)
    return prepared


class RecordService:
    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.keys: KeyStore = vault.keys

    async def records_ring(self, session: AsyncSession, name: str | None) -> LoadedRing:
        settings = self.vault.settings
        name = name or settings.records_key_name
        ring = await self.keys.find(session, name)
        if ring is None and name == settings.records_key_name:
            ring, _ = await self.keys.create(
                session, name, purpose=Purpose.records, algorithm=Algorithm(settings.records_algorithm), if_missing=True
            )
        if ring is None:
            raise KeyNotFound(f"no key named {name}")
        if ring.purpose is not Purpose.records:
            raise KeyPurposeMismatch(f"key {name} is a {ring.purpose.value} key, not a records key")
        return ring

    async def _subject(self, session: AsyncSession, subject_id: uuid.UUID) -> None:
        await session.execute(
            pg_insert(Subject)
            .values(id=subject_id, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["id"])
        )
        shredded = await session.scalar(select(Subject.shredded_at).where(Subject.id == subject_id))
        if shredded is not None:
            raise SubjectShredded("this subject's data was destroyed; it cannot hold new data")

    async def _data_key(self, session: AsyncSession, subject_id: uuid.UUID, ring: LoadedRing) -> tuple[uuid.UUID, Aead]:
        """The subject's data key under ``ring``, created on first use."""
        existing = (
            await session.execute(
                select(DataKey).where(DataKey.subject_id == subject_id, DataKey.key_ring_id == ring.id)
            )
        ).scalar_one_or_none()
        if existing is None:
            dek, material = Aead.generate(ring.algorithm)
            version, wrapped = ring.wrap_key(material, dek_aad(subject_id, ring.id))
            key_id = uuid.uuid4()
            inserted = (
                await session.execute(
                    pg_insert(DataKey)
                    .values(
                        id=key_id,
                        subject_id=subject_id,
                        key_ring_id=ring.id,
                        kek_version=version,
                        algorithm=ring.algorithm.value,
                        wrapped_key=wrapped,
                        created_at=datetime.now(UTC),
                    )
                    .on_conflict_do_nothing(index_elements=["subject_id", "key_ring_id"])
                    .returning(DataKey.id)
                )
            ).scalar_one_or_none()
            if inserted is not None:
                return key_id, dek
            # A concurrent request created it first: use theirs.
            existing = (
                await session.execute(
                    select(DataKey).where(DataKey.subject_id == subject_id, DataKey.key_ring_id == ring.id)
                )
            ).scalar_one()
        return existing.id, self._open_dek(existing, ring)

    @staticmethod
    def _open_dek(key: DataKey, ring: LoadedRing) -> Aead:
        material = ring.unwrap_key(key.kek_version, key.wrapped_key, dek_aad(key.subject_id, ring.id))
        return Aead(Algorithm(key.algorithm), material)

    async def store(
        self,
        session: AsyncSession,
        *,
        subject_id: uuid.UUID,
        label: str,
        values: dict[str, str],
        created_by: str,
        key_name: str | None = None,
    ) -> tuple[LoadedRecord, dict[str, str]]:
        """Create a record; returns it and the normalised values (for the caller's masked view)."""
        prepared = validate_fields(values)
        ring = await self.records_ring(session, key_name)
        await self._subject(session, subject_id)
        key_id, dek = await self._data_key(session, subject_id, ring)
        now = datetime.now(UTC)
        record = Record(
            id=uuid.uuid4(),
            token=new_token("rec"),
            subject_id=subject_id,
            data_key_id=key_id,
            label=label,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
        session.add(record)
        fields = {name: self._seal(record.id, spec, value, dek, now) for name, (spec, value) in prepared.items()}
        session.add_all(fields.values())
        await session.flush()
        return LoadedRecord(record, fields, shredded=False), {n: v for n, (_, v) in prepared.items()}

    def _seal(self, record_id: uuid.UUID, spec: FieldType, value: str, dek: Aead, now: datetime) -> RecordField:
        return RecordField(
            id=uuid.uuid4(),
            record_id=record_id,
            name=spec.name,
            data_class=spec.data_class.value,
            token=new_token("tok"),
            ciphertext=dek.seal(value.encode(), field_aad(record_id, spec.name)),
            blind_index=self.vault.indexer.index(spec.name, value) if spec.indexable else None,
            created_at=now,
            updated_at=now,
        )

    async def update(
        self, session: AsyncSession, loaded: LoadedRecord, values: dict[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """Set fields of a record. A value equal to the stored one keeps its token; returns changed names."""
        if loaded.shredded:
            raise SubjectShredded("this subject's data was destroyed")
        prepared = validate_fields(values)
        dek = await self.data_key_of(session, loaded)
        now = datetime.now(UTC)
        changed: list[str] = []
        for name, (spec, value) in prepared.items():
            current = loaded.fields.get(name)
            if current is not None:
                if self._open(dek, loaded.record.id, current) == value:
                    continue
                await session.delete(current)
                await session.flush()
            fresh = self._seal(loaded.record.id, spec, value, dek, now)
            session.add(fresh)
            loaded.fields[name] = fresh
            changed.append(name)
        if changed:
            loaded.record.updated_at = now
        await session.flush()
        return {n: v for n, (_, v) in prepared.items()}, changed

    async def load(
        self, session: AsyncSession, *, ids: Sequence[uuid.UUID] = (), tokens: Sequence[str] = ()
    ) -> list[LoadedRecord]:
        """Records by id or token, in the order asked; a missing one is a 404."""
        wanted_ids = list(dict.fromkeys(ids))
        wanted_tokens = list(dict.fromkeys(tokens))
        rows: list[tuple[Record, datetime | None]] = []
        if wanted_ids:
            rows += [
                (r, s)
                for r, s in (
                    await session.execute(
                        select(Record, Subject.shredded_at)
                        .join(Subject, Subject.id == Record.subject_id)
                        .where(Record.id.in_(wanted_ids))
                    )
                ).tuples()
            ]
        if wanted_tokens:
            rows += [
                (r, s)
                for r, s in (
                    await session.execute(
                        select(Record, Subject.shredded_at)
                        .join(Subject, Subject.id == Record.subject_id)
                        .where(Record.token.in_(wanted_tokens))
                    )
                ).tuples()
            ]
        by_id = {r.id: (r, s) for r, s in rows}
        by_token = {r.token: r.id for r, _ in rows}
        missing = [str(i) for i in wanted_ids if i not in by_id] + [t for t in wanted_tokens if t not in by_token]
        if missing:
            raise RecordNotFound(f"{len(missing)} of the records asked for do not exist")
        order = list(dict.fromkeys([*wanted_ids, *(by_token[t] for t in wanted_tokens)]))
        fields: dict[uuid.UUID, dict[str, RecordField]] = {i: {} for i in order}
        for f in (await session.execute(select(RecordField).where(RecordField.record_id.in_(order)))).scalars():
            fields[f.record_id][f.name] = f
        return [LoadedRecord(by_id[i][0], fields[i], shredded=by_id[i][1] is not None) for i in order]

    async def load_by_field_tokens(
        self, session: AsyncSession, tokens: Sequence[str]
    ) -> dict[str, tuple[uuid.UUID, str]]:
        """Field tokens to (record id, field name); a missing one is a 404."""
        rows = (
            await session.execute(
                select(RecordField.token, RecordField.record_id, RecordField.name).where(
                    RecordField.token.in_(list(set(tokens)))
                )
            )
        ).all()
        found = {t: (rid, name) for t, rid, name in rows}
        if len(found) != len(set(tokens)):
            raise RecordNotFound(f"{len(set(tokens)) - len(found)} of the tokens asked for do not exist")
        return found

    async def records_of(self, session: AsyncSession, subject_id: uuid.UUID) -> list[LoadedRecord]:
        ids = list(
            (
                await session.execute(
                    select(Record.id).where(Record.subject_id == subject_id).order_by(Record.created_at)
                )
            )
            .scalars()
            .all()
        )
        return await self.load(session, ids=ids) if ids else []

    async def data_key_of(self, session: AsyncSession, loaded: LoadedRecord) -> Aead:
        if loaded.shredded or loaded.record.data_key_id is None:
            raise SubjectShredded("this subject's data was destroyed")
        row = (
            await session.execute(
                select(DataKey, KeyRing.name)
                .join(KeyRing, KeyRing.id == DataKey.key_ring_id)
                .where(DataKey.id == loaded.record.data_key_id)
            )
        ).one_or_none()
        if row is None:
            raise SubjectShredded("this subject's data was destroyed")
        key, ring_name = row._tuple()
        ring = await self.keys.get(session, ring_name)
        return self._open_dek(key, ring)

    @staticmethod
    def _open(dek: Aead, record_id: uuid.UUID, stored: RecordField) -> str:
        try:
            return dek.open(stored.ciphertext, field_aad(record_id, stored.name)).decode()
        except IntegrityError as exc:
            raise StoredIntegrityAt(Integrity(record_id, stored.name)) from exc

    async def decrypt(self, session: AsyncSession, loaded: LoadedRecord, names: Iterable[str]) -> dict[str, str]:
        """Plaintext of the named fields that the record holds (absent names are left out)."""
        present = [n for n in names if n in loaded.fields]
        if not present:
            if loaded.shredded:
                raise SubjectShredded("this subject's data was destroyed")
            return {}
        dek = await self.data_key_of(session, loaded)
        return {n: self._open(dek, loaded.record.id, loaded.fields[n]) for n in present}

    async def lookup(self, session: AsyncSession, name: str, value: str) -> list[Record]:
        """Records whose field ``name`` equals ``value`` (after normalisation), found by blind index."""
        try:
            spec, normalised = prepare(name, value)
        except InvalidFieldValue as exc:
            raise InvalidField(str(exc), errors=[{"field": name, "reason": str(exc)}]) from exc
        if not spec.indexable:
            raise InvalidField(
                f"{name} cannot be looked up by value", errors=[{"field": name, "reason": "not indexed"}]
            )
        digest = self.vault.indexer.index(name, normalised)
        rows = (
            await session.execute(
                select(Record)
                .join(RecordField, RecordField.record_id == Record.id)
                .join(Subject, Subject.id == Record.subject_id)
                .where(RecordField.name == name, RecordField.blind_index == digest, Subject.shredded_at.is_(None))
                .order_by(Record.created_at)
            )
        ).scalars()
        return list(rows)

    async def shred(self, session: AsyncSession, subject_id: uuid.UUID) -> tuple[bool, int, int]:
        """Destroy the subject's data keys; returns (newly shredded, keys destroyed, records affected).

        The ciphertexts stay (they are noise without the key) so the
        destruction is provable; blind-index values go, since they are keyed
        pseudonyms of the values that would still link the subject.
        """
        subject = (
            await session.execute(select(Subject).where(Subject.id == subject_id).with_for_update())
        ).scalar_one_or_none()
        if subject is None:
            session.add(Subject(id=subject_id, created_at=datetime.now(UTC), shredded_at=datetime.now(UTC)))
            await session.flush()
            return True, 0, 0
        if subject.shredded_at is not None:
            return False, 0, 0
        subject.shredded_at = datetime.now(UTC)
        record_ids = list(
            (await session.execute(select(Record.id).where(Record.subject_id == subject_id))).scalars().all()
        )
        await session.execute(update(Record).where(Record.subject_id == subject_id).values(data_key_id=None))
        if record_ids:
            await session.execute(
                update(RecordField).where(RecordField.record_id.in_(record_ids)).values(blind_index=None)
            )
        destroyed = await session.execute(delete(DataKey).where(DataKey.subject_id == subject_id))
        await session.flush()
        return True, int(destroyed.rowcount or 0), len(record_ids)  # type: ignore[attr-defined]


def append_to_ledger(path: Path, subject_id: uuid.UUID) -> None:
    """Append a shredded subject to the write-once ledger that restores re-apply."""
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"{subject_id} {datetime.now(UTC).isoformat()}\n")
        fh.flush()
        os.fsync(fh.fileno())  # on the disk before the shred's transaction commits


def read_ledger(path: Path) -> set[uuid.UUID]:
    if not path.exists():
        return set()
    found: set[uuid.UUID] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            found.add(uuid.UUID(line.split()[0]))
    return found
