"""Key rings: versioned key-encryption keys wrapped by the root, cached per replica.

A ring's versions are unwrapped once and kept in memory; the ring's metadata
(current version, minimum decryption version) is re-read after
``key_cache_seconds``, which bounds how long another replica keeps writing
with a version that was just rotated away, or keeps decrypting with one that
was just retired. Rotations and retirements take a row lock on the ring, so
two concurrent rotations cannot both create version n+1.
"""

from __future__ import annotations

import enum
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.vault.crypto.aead import Aead, Algorithm, IntegrityError
from services.vault.crypto.root import RootKeyProvider
from services.vault.errors import (
    InvalidKeyVersion,
    KeyExists,
    KeyNotFound,
    KeyVersionInUse,
    KeyVersionRetired,
    KeyVersionTooNew,
    RootKeyUnavailable,
    StoredIntegrity,
)
from services.vault.models import DataKey, KeyRing, KeyVersion


class Purpose(enum.StrEnum):
    records = "records"
    transit = "transit"


def dek_aad(subject_id: uuid.UUID, ring_id: uuid.UUID) -> bytes:
    """Associated data of a wrapped data key: its subject and ring (a key row moved to another subject fails)."""
    return f"vault-dek:v1:{subject_id}:{ring_id}".encode()


def kek_aad(ring_id: uuid.UUID, version: int, algorithm: Algorithm) -> bytes:
    return f"vault-kek:v1:{ring_id}:{version}:{algorithm.value}".encode()


@dataclass(slots=True)
class LoadedRing:
    id: uuid.UUID
    name: str
    purpose: Purpose
    owner: str | None
    algorithm: Algorithm
    current_version: int
    min_decryption_version: int
    keys: dict[int, Aead] = field(repr=False)
    loaded_at: float = 0.0

    def encryptor(self) -> tuple[int, Aead]:
        return self.current_version, self.keys[self.current_version]

    def decryptor(self, version: int) -> Aead:
        if version < self.min_decryption_version and version >= 1:
            raise KeyVersionRetired(
                f"version {version} of key {self.name} is retired (minimum {self.min_decryption_version})"
            )
        key = self.keys.get(version)
        if key is None:
            raise InvalidKeyVersion(f"key {self.name} has no version {version}")
        return key

    def wrap_key(self, key: bytes, aad: bytes) -> tuple[int, bytes]:
        version, aead = self.encryptor()
        return version, aead.seal(key, aad)

    def unwrap_key(self, version: int, blob: bytes, aad: bytes) -> bytes:
        try:
            return self.decryptor(version).open(blob, aad)
        except IntegrityError as exc:
            raise StoredIntegrity("a wrapped data key failed its integrity check") from exc


class KeyStore:
    """Reads, creates, rotates and retires key rings; holds unwrapped KEKs in memory."""

    def __init__(
        self,
        root: RootKeyProvider,
        *,
        previous_roots: Mapping[str, RootKeyProvider] | None = None,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        #: Earlier root keys by id: they still unwrap KEKs until :meth:`rewrap_root` moved them.
        self.previous_roots = dict(previous_roots or {})
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._rings: dict[str, LoadedRing] = {}
        self._material: dict[tuple[uuid.UUID, int], Aead] = {}

    def forget(self, name: str | None = None) -> None:
        if name is None:
            self._rings.clear()
        else:
            self._rings.pop(name, None)

    async def find(self, session: AsyncSession, name: str, *, fresh: bool = False) -> LoadedRing | None:
        cached = self._rings.get(name)
        if cached is not None and not fresh and self._clock() - cached.loaded_at < self.cache_seconds:
            return cached
        row = (await session.execute(select(KeyRing).where(KeyRing.name == name))).scalar_one_or_none()
        if row is None:
            self._rings.pop(name, None)
            return None
        return await self._load(session, row)

    async def get(self, session: AsyncSession, name: str, *, fresh: bool = False) -> LoadedRing:
        ring = await self.find(session, name, fresh=fresh)
        if ring is None:
            raise KeyNotFound(f"no key named {name}")
        return ring

    async def _load(self, session: AsyncSession, row: KeyRing) -> LoadedRing:
        algorithm = Algorithm(row.algorithm)
        known = {v for (ring_id, v) in self._material if ring_id == row.id}
        missing = (
            (
                await session.execute(
                    select(KeyVersion).where(
                        KeyVersion.key_ring_id == row.id, KeyVersion.version.not_in(known) if known else true()
                    )
                )
            )
            .scalars()
            .all()
        )
        for version in missing:
            try:
                root = self.root_for(version.root_key_id)
                material = root.unwrap(version.wrapped_key, kek_aad(row.id, version.version, algorithm))
            except IntegrityError as exc:
                raise StoredIntegrity(
                    f"version {version.version} of key {row.name} failed its integrity check"
                ) from exc
            self._material[(row.id, version.version)] = Aead(algorithm, material)
        keys = {v: aead for (ring_id, v), aead in self._material.items() if ring_id == row.id}
        ring = LoadedRing(
            id=row.id,
            name=row.name,
            purpose=Purpose(row.purpose),
            owner=row.owner,
            algorithm=algorithm,
            current_version=row.current_version,
            min_decryption_version=row.min_decryption_version,
            keys=keys,
            loaded_at=self._clock(),
        )
        self._rings[row.name] = ring
        return ring

    async def _new_version(self, session: AsyncSession, ring_id: uuid.UUID, version: int, algorithm: Algorithm) -> None:
        _, material = Aead.generate(algorithm)
        session.add(
            KeyVersion(
                key_ring_id=ring_id,
                version=version,
                wrapped_key=self.root.wrap(material, kek_aad(ring_id, version, algorithm)),
                root_key_id=self.root.key_id,
            )
        )
        await session.flush()

    async def create(
        self,
        session: AsyncSession,
        name: str,
        *,
        purpose: Purpose,
        algorithm: Algorithm,
        owner: str | None = None,
        if_missing: bool = False,
    ) -> tuple[LoadedRing, bool]:
        """Create a ring with version 1; ``if_missing`` returns the existing ring instead of refusing.

        Concurrent creators of the same name are serialised by the unique
        index: the loser's insert does nothing and it reads the winner's ring.
        """
        ring_id = uuid.uuid4()
        now = datetime.now(UTC)
        inserted = (
            await session.execute(
                pg_insert(KeyRing)
                .values(
                    id=ring_id,
                    name=name,
                    purpose=purpose.value,
                    owner=owner,
                    algorithm=algorithm.value,
                    current_version=1,
                    min_decryption_version=1,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(KeyRing.id)
            )
        ).scalar_one_or_none()
        if inserted is None:
            if not if_missing:
                raise KeyExists(f"a key named {name} exists")
            return await self.get(session, name, fresh=True), False
        await self._new_version(session, ring_id, 1, algorithm)
        return await self.get(session, name, fresh=True), True

    async def _locked_row(self, session: AsyncSession, name: str) -> KeyRing:
        row = (
            await session.execute(select(KeyRing).where(KeyRing.name == name).with_for_update())
        ).scalar_one_or_none()
        if row is None:
            raise KeyNotFound(f"no key named {name}")
        return row

    async def rotate(self, session: AsyncSession, name: str) -> LoadedRing:
        """Add version n+1 and make it the one new writes use; older versions keep decrypting."""
        row = await self._locked_row(session, name)
        version = row.current_version + 1
        await self._new_version(session, row.id, version, Algorithm(row.algorithm))
        row.current_version = version
        row.updated_at = datetime.now(UTC)
        await session.flush()
        return await self._load(session, row)

    async def outstanding(self, session: AsyncSession, ring_id: uuid.UUID, below: int) -> int:
        """How many data keys are still wrapped under a version below ``below``."""
        count = await session.scalar(
            select(func.count()).select_from(DataKey).where(DataKey.key_ring_id == ring_id, DataKey.kek_version < below)
        )
        return int(count or 0)

    async def set_min_decryption_version(self, session: AsyncSession, name: str, version: int) -> LoadedRing:
        """Retire versions below ``version``; refused while a data key still depends on one."""
        row = await self._locked_row(session, name)
        if not 1 <= version <= row.current_version:
            raise InvalidKeyVersion(f"the minimum decryption version must be between 1 and {row.current_version}")
        if version > row.min_decryption_version:
            created = await session.scalar(
                select(KeyVersion.created_at).where(KeyVersion.key_ring_id == row.id, KeyVersion.version == version)
            )
            age = (datetime.now(UTC) - created).total_seconds() if created else 0.0
            if age < self.cache_seconds:
                # Another replica may still write with an older version until its cache
                # expires; retiring now could strand what it writes.
                wait = max(1, math.ceil(self.cache_seconds - age))
                raise KeyVersionTooNew(
                    f"version {version} is {age:.1f} s old; replicas adopt it within {self.cache_seconds} s",
                    headers={"Retry-After": str(wait)},
                )
        if row.purpose == Purpose.records.value:
            left = await self.outstanding(session, row.id, version)
            if left:
                raise KeyVersionInUse(
                    f"{left} data keys are still wrapped under older versions; rewrap first", outstanding=left
                )
        row.min_decryption_version = version
        row.updated_at = datetime.now(UTC)
        await session.flush()
        return await self._load(session, row)

    def root_for(self, key_id: str) -> RootKeyProvider:
        if key_id == self.root.key_id:
            return self.root
        previous = self.previous_roots.get(key_id)
        if previous is None:
            raise RootKeyUnavailable(f"key-encryption keys are wrapped by root key {key_id}, which is not configured")
        return previous

    async def rewrap_root(self, session: AsyncSession, *, batch: int = 500) -> tuple[int, int]:
        """Move KEK versions wrapped by an earlier root key under the current one.

        Returns (rewrapped now, still under another root). Rows are locked
        and processed in one transaction per call; KEK rows are few (one per
        ring and version), so a call usually finishes the job.
        """
        rows = (
            (
                await session.execute(
                    select(KeyVersion, KeyRing.algorithm)
                    .join(KeyRing, KeyRing.id == KeyVersion.key_ring_id)
                    .where(KeyVersion.root_key_id != self.root.key_id)
                    .limit(batch)
                    .with_for_update(of=KeyVersion)
                )
            )
            .tuples()
            .all()
        )
        for version, algorithm_name in rows:
            aad = kek_aad(version.key_ring_id, version.version, Algorithm(algorithm_name))
            try:
                material = self.root_for(version.root_key_id).unwrap(version.wrapped_key, aad)
            except IntegrityError as exc:
                raise StoredIntegrity(f"version {version.version} of a key failed its integrity check") from exc
            version.wrapped_key = self.root.wrap(material, aad)
            version.root_key_id = self.root.key_id
        await session.flush()
        left = await session.scalar(
            select(func.count()).select_from(KeyVersion).where(KeyVersion.root_key_id != self.root.key_id)
        )
        return len(rows), int(left or 0)

    async def root_usage(self, session: AsyncSession) -> dict[str, int]:
        rows = (
            await session.execute(select(KeyVersion.root_key_id, func.count()).group_by(KeyVersion.root_key_id))
        ).tuples()
        return {key_id: int(count) for key_id, count in rows}

    async def list_rings(self, session: AsyncSession) -> list[KeyRing]:
        return list((await session.execute(select(KeyRing).order_by(KeyRing.name))).scalars().all())
