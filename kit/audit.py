"""Tamper-evident audit log: an append-only, hash-chained table per service.

Each entry stores ``entry_hash = SHA-256(prev_hash || canonical(entry))``.
One row, ``audit_head``, holds the chain's tail (sequence number and hash).
An append is ONE statement: an upsert of the head that advances the sequence
and computes the new hash from the head's current hash, feeding an INSERT of
the entry. Concurrent writers queue on the head's row lock, and PostgreSQL
applies the upsert to the newest committed head once the lock is free (read
committed re-checks the updated row), so the chain never forks; the lock is
released at commit, so append audit entries as the last step of a request.
The hash is computed by the database from the canonical JSON that Python
renders around the sequence number (``canonical`` stays the single
definition: the verifier recomputes every hash in Python).

Checkpoints sign ``(seq, entry_hash)`` with Ed25519 and can be copied to an
append-only file (a WORM mount) the service cannot rewrite.
:meth:`AuditLog.verify` walks the chain and reports the first bad entry: edited,
removed, reordered, or a tail truncated behind a checkpoint.

The append runs on the request transaction's asyncpg connection (:mod:`kit.statements`):
it is the fixed cost of every audited request.

Keyed entries (issue 13, item 13): the chain's SHA-256 is computed by the
database, so a compromised database role could append entries that chain
correctly. Each entry therefore also carries an HMAC-SHA256 of its content
(everything but the sequence number, which only the database knows) under a
key the database never sees: derived from the service's ``audit_signing_key``
setting and the schema (:func:`mac_key_from_secret`), installed by the app
factory (:meth:`AuditLog.use_mac_key`). The MAC rides inside ``detail`` under
``_mac`` (so it is hashed into the chain too, and no table changes);
:class:`AuditRecord` lifts it out again (``record.mac``). :meth:`AuditLog.verify`
with a key refuses an entry whose MAC is wrong (``forged_entry``) and, after
the first keyed entry, one without a MAC (``unkeyed_entry``); older unkeyed
entries before it still verify by chain and checkpoints. With
``extra_checkpoints`` from the WORM file (:func:`load_checkpoints`) the
verifier holds the chain against the copies the service cannot rewrite.

Entries carry ids and vault tokens, never personal data.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from opentelemetry import trace
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from kit.context import current_request_id
from kit.statements import Statement

GENESIS_HASH = bytes(32)
_VERIFY_BATCH = 1000
#: Where an entry's MAC rides in its ``detail`` (hashed into the chain with the rest).
MAC_FIELD = "_mac"


def mac_key_from_secret(secret: str, schema: str) -> bytes:
    """The key of a service's entry MACs: derived from its audit secret, never stored in the database."""
    return hmac.new(secret.encode(), f"audit-entry-mac:v1:{schema}".encode(), hashlib.sha256).digest()


def entry_mac(key: bytes, record: AuditRecord) -> str:
    """HMAC-SHA256 (hex) of everything in the entry but its sequence number and the MAC itself."""
    fields = record.hashed_fields(with_mac=False)
    del fields["seq"]
    return hmac.new(key, canonical(fields), hashlib.sha256).hexdigest()


def signing_key_from_secret(secret: str) -> Ed25519PrivateKey:
    """Derive the checkpoint signing key from the configured secret (32+ random bytes)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.encode()).digest())


#: Built once: json.dumps with any option builds a new encoder per call.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(entry: dict[str, Any]) -> bytes:
    return _CANONICAL_JSON.encode(entry).encode()


def canonical_around_seq(fields: dict[str, Any]) -> tuple[bytes, bytes]:
    """``canonical(fields | {"seq": n})`` split where the digits of ``n`` go: (before, after).

    The database knows the sequence number only inside the append statement,
    so it joins ``before || digits(n) || after`` itself. The keys sorted before
    ``"seq"`` and those after it are rendered by :func:`canonical` itself (keys
    sort the same way inside it), which a property test holds against
    :func:`canonical` of the whole object.
    """
    if "seq" in fields:
        raise ValueError("the sequence number is the database's to give")
    before = canonical({key: value for key, value in fields.items() if key < "seq"})[:-1]  # "{...", no "}"
    after = canonical({key: value for key, value in fields.items() if key > "seq"})[1:]  # "...}", no "{"
    return before + (b"," if len(before) > 1 else b"") + b'"seq":', (b"," + after) if len(after) > 1 else after


def compute_hash(prev_hash: bytes, entry: dict[str, Any]) -> bytes:
    return hashlib.sha256(prev_hash + canonical(entry)).digest()


def _utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _float_as_jsonb_returns_it(token: str) -> float | int:
    """JSONB keeps numbers as numeric and prints them without an exponent, so a
    float Python writes as ``1.5e+300`` comes back as an integer: record it as
    that integer, or the verifier would hash other bytes than the writer did."""
    value = Decimal(token)
    if "e" in token.lower() and value == value.to_integral_value():
        return int(value)
    return float(token)


def _entry_params(record: AuditRecord) -> dict[str, Any]:
    row = record.row()
    for computed in ("seq", "prev_hash", "entry_hash"):
        del row[computed]
    return row


class AuditChainMismatch(RuntimeError):
    """The hash the database computed is not the one the verifier would compute."""

    def __init__(self, schema: str, seq: int) -> None:
        super().__init__(f"audit chain {schema}: entry {seq} hashed differently by the database")


#: The CTE of :meth:`AuditLog.append_ctes` that returns the appended entry's ``seq``, ``prev_hash``, ``entry_hash``.
APPENDED = "audit_appended"


@dataclass(slots=True)
class PendingEntry:
    """An entry on its way into the chain inside a statement (see :meth:`AuditLog.append_ctes`)."""

    schema: str
    record: AuditRecord
    #: The statement's ``audit_*`` parameters.
    params: dict[str, Any]

    def appended(self, row: Mapping[str, Any]) -> AuditRecord:
        """The entry as appended, from ``seq``, ``prev_hash`` and ``entry_hash`` of ``audit_appended``."""
        record = self.record
        record.seq, record.prev_hash, record.entry_hash = row["seq"], row["prev_hash"], row["entry_hash"]
        if compute_hash(record.prev_hash, record.hashed_fields()) != record.entry_hash:
            # The database and the verifier disagree on the bytes hashed (a server
            # encoding that rewrites the text, say): never leave an entry the
            # verifier would reject; the request fails and rolls back instead.
            raise AuditChainMismatch(self.schema, record.seq)
        return record


class AuditLog:
    """The audit tables of one service schema and the operations on them."""

    def __init__(self, metadata: MetaData) -> None:
        if metadata.schema is None:
            raise ValueError("audit tables need a metadata bound to a service schema")
        self.schema: str = metadata.schema
        #: Set by the app factory from settings (:func:`mac_key_from_secret`); None writes unkeyed entries.
        self.mac_key: bytes | None = None
        self.entries = Table(
            "audit_entry",
            metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("id", Uuid, nullable=False, unique=True),
            Column("occurred_at", DateTime(timezone=True), nullable=False),
            Column("actor", String(200), nullable=False),
            Column("actor_kind", String(32), nullable=False),
            Column("action", String(200), nullable=False, index=True),
            Column("target", String(200), nullable=True, index=True),
            Column("outcome", String(32), nullable=False),
            Column("detail", JSONB, nullable=False),
            Column("request_id", String(128), nullable=True),
            Column("trace_id", String(32), nullable=True),
            Column("prev_hash", LargeBinary(32), nullable=False),
            Column("entry_hash", LargeBinary(32), nullable=False),
        )
        self.checkpoints = Table(
            "audit_checkpoint",
            metadata,
            Column("seq", BigInteger, primary_key=True, autoincrement=False),
            Column("entry_hash", LargeBinary(32), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("signature", LargeBinary(64), nullable=False),
            Column("key_id", Text, nullable=False),
        )
        #: One row: the chain's tail, advanced by every append (see the module docstring).
        self.head = Table(
            "audit_head",
            metadata,
            Column("id", SmallInteger, primary_key=True, autoincrement=False),
            Column("seq", BigInteger, nullable=False),
            Column("prev_hash", LargeBinary(32), nullable=False),
            Column("entry_hash", LargeBinary(32), nullable=False),
            CheckConstraint("id = 1", name="single_row"),
        )
        append = f"WITH {self.append_ctes()} SELECT seq, prev_hash, entry_hash FROM {APPENDED}"  # noqa: S608
        self._statement = Statement(text(append).bindparams(*self.append_binds()))

    def use_mac_key(self, key: bytes | None) -> None:
        """Key every entry appended from now on (and the default key of :meth:`verify`)."""
        self.mac_key = key

    def append_ctes(self) -> str:
        """The append as two CTEs for the ``WITH`` of a statement (see the module docstring for why it is safe).

        A request that ends with a statement of its own can append its audit entry in that statement,
        saving a round trip: join this to its ``WITH``, add :meth:`append_binds` to its bind parameters,
        pass :meth:`pending`'s parameters, select ``seq``, ``prev_hash`` and ``entry_hash`` from
        ``audit_appended`` and hand that row to :meth:`PendingEntry.appended`. Parameter names start with
        ``audit_``. The head's row lock is held from this statement to the commit, as for :meth:`append`.
        """
        head, entries = f'"{self.schema}".audit_head', f'"{self.schema}".audit_entry'
        digits = "convert_to(({seq})::text, 'UTF8')"
        # The schema is the service's own constant, never input.
        return f"""
            audit_head_advanced AS (
                INSERT INTO {head} AS h (id, seq, prev_hash, entry_hash)
                VALUES (1, 1, :audit_genesis,
                        sha256(:audit_genesis || :audit_before_seq || {digits.format(seq="1")} || :audit_after_seq))
                ON CONFLICT (id) DO UPDATE SET
                    seq = h.seq + 1,
                    prev_hash = h.entry_hash,
                    entry_hash = sha256(
                        h.entry_hash || :audit_before_seq || {digits.format(seq="h.seq + 1")} || :audit_after_seq
                    )
                RETURNING seq, prev_hash, entry_hash
            ), {APPENDED} AS (
                INSERT INTO {entries} (seq, id, occurred_at, actor, actor_kind, action, target, outcome, detail,
                                       request_id, trace_id, prev_hash, entry_hash)
                SELECT head.seq, :audit_id, :audit_occurred_at, :audit_actor, :audit_actor_kind, :audit_action,
                       :audit_target, :audit_outcome, :audit_detail, :audit_request_id, :audit_trace_id,
                       head.prev_hash, head.entry_hash
                FROM audit_head_advanced AS head
                RETURNING seq, prev_hash, entry_hash
            )
            """  # noqa: S608

    @staticmethod
    def append_binds() -> list[BindParameter[Any]]:
        """The types of :meth:`append_ctes`' parameters."""
        return [
            bindparam("audit_genesis", GENESIS_HASH, type_=LargeBinary),
            bindparam("audit_before_seq", type_=LargeBinary),
            bindparam("audit_after_seq", type_=LargeBinary),
            bindparam("audit_id", type_=Uuid),
            bindparam("audit_occurred_at", type_=DateTime(timezone=True)),
            bindparam("audit_actor", type_=String),
            bindparam("audit_actor_kind", type_=String),
            bindparam("audit_action", type_=String),
            bindparam("audit_target", type_=String),
            bindparam("audit_outcome", type_=String),
            bindparam("audit_detail", type_=JSONB),
            bindparam("audit_request_id", type_=String),
            bindparam("audit_trace_id", type_=String),
        ]

    def pending(
        self,
        *,
        actor: str,
        action: str,
        actor_kind: str = "staff",
        target: str | None = None,
        outcome: str = "success",
        detail: dict[str, Any] | None = None,
    ) -> PendingEntry:
        """An entry to append in a statement built with :meth:`append_ctes` (its parameters: ``.params``)."""
        span_context = trace.get_current_span().get_span_context()
        record = AuditRecord(
            seq=0,
            id=uuid.uuid4(),
            occurred_at=datetime.now(UTC),
            actor=actor,
            actor_kind=actor_kind,
            action=action,
            target=target,
            outcome=outcome,
            # Round-trip through JSON so the hash covers what JSONB will return.
            detail=json.loads(canonical(detail or {}), parse_float=_float_as_jsonb_returns_it),
            request_id=current_request_id(),
            trace_id=format(span_context.trace_id, "032x") if span_context.is_valid else None,
            prev_hash=b"",
            entry_hash=b"",
        )
        if self.mac_key is not None:
            record.mac = entry_mac(self.mac_key, record)
        fields = record.hashed_fields()
        del fields["seq"]
        before_seq, after_seq = canonical_around_seq(fields)
        params = {"audit_before_seq": before_seq, "audit_after_seq": after_seq}
        params.update((f"audit_{name}", value) for name, value in _entry_params(record).items())
        return PendingEntry(self.schema, record, params)

    async def _tail(self, session: AsyncSession, *, lock: bool = False) -> tuple[int, bytes]:
        """(seq, entry_hash) of the last entry; with ``lock``, wait for appends in flight to commit."""
        query = select(self.head.c.seq, self.head.c.entry_hash).where(self.head.c.id == 1)
        row = (await session.execute(query.with_for_update() if lock else query)).first()
        return (0, GENESIS_HASH) if row is None else (row.seq, row.entry_hash)

    async def append(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        actor_kind: str = "staff",
        target: str | None = None,
        outcome: str = "success",
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one entry in the caller's transaction (the request's)."""
        entry = self.pending(
            actor=actor, action=action, actor_kind=actor_kind, target=target, outcome=outcome, detail=detail
        )
        return await self.append_entry(session, entry)

    async def append_entry(self, session: AsyncSession, entry: PendingEntry) -> AuditRecord:
        """Append an entry made by :meth:`pending` with a statement of its own."""
        row = await self._statement.fetchrow(session, entry.params)
        assert row is not None  # one row inserted, returned
        return entry.appended(row)

    async def checkpoint(self, session: AsyncSession, signing_key: Ed25519PrivateKey) -> Checkpoint | None:
        """Sign the current tail. Call in its own transaction, then commit.

        The file copy is written by :meth:`export_checkpoint` after commit, so
        the file never holds a checkpoint of a rolled-back entry.
        """
        seq, entry_hash = await self._tail(session, lock=True)
        if seq == 0:
            return None
        existing = (await session.execute(select(self.checkpoints.c.seq).where(self.checkpoints.c.seq == seq))).first()
        if existing is not None:
            return None
        cp = Checkpoint.sign(self.schema, seq, entry_hash, signing_key)
        await session.execute(
            insert(self.checkpoints).values(
                seq=cp.seq, entry_hash=cp.entry_hash, signature=cp.signature, key_id=cp.key_id
            )
        )
        return cp

    async def entries_since_checkpoint(self, session: AsyncSession) -> int:
        last_cp = (await session.execute(select(func.max(self.checkpoints.c.seq)))).scalar() or 0
        tail, _ = await self._tail(session)
        return int(tail - last_cp)

    async def stored_checkpoints(self, session: AsyncSession) -> list[Checkpoint]:
        rows = (await session.execute(select(self.checkpoints).order_by(self.checkpoints.c.seq))).all()
        return [
            Checkpoint(schema=self.schema, seq=r.seq, entry_hash=r.entry_hash, signature=r.signature, key_id=r.key_id)
            for r in rows
        ]

    async def verify(  # noqa: PLR0911, PLR0912 (one early return per kind of tampering)
        self,
        session: AsyncSession,
        public_key: Ed25519PublicKey,
        *,
        extra_checkpoints: Iterable[Checkpoint] = (),
        mac_key: bytes | None = None,
    ) -> VerificationReport:
        """Walk the whole chain; report the first entry that is not as written.

        ``mac_key`` (default: the key installed with :meth:`use_mac_key`) checks every entry's MAC;
        ``extra_checkpoints`` (the WORM copies, :func:`load_checkpoints`) are held against the chain
        like the stored ones, so deleting a checkpoint row hides nothing.
        """
        mac_key = mac_key if mac_key is not None else self.mac_key
        keyed_seen = False
        checkpoints = {cp.seq: cp for cp in await self.stored_checkpoints(session)}
        for cp in extra_checkpoints:
            checkpoints.setdefault(cp.seq, cp)
        for cp in sorted(checkpoints.values(), key=lambda c: c.seq):
            if not cp.is_signed_by(public_key):
                return VerificationReport.failed(cp.seq, Problem.forged_checkpoint, 0, len(checkpoints))

        expected_seq = 1
        prev_hash = GENESIS_HASH
        checked = 0
        last_seq = 0
        while True:
            rows = (
                await session.execute(
                    select(self.entries)
                    .where(self.entries.c.seq >= expected_seq)
                    .order_by(self.entries.c.seq)
                    .limit(_VERIFY_BATCH)
                )
            ).all()
            if not rows:
                break
            for row in rows:
                record = AuditRecord.from_row(row)
                if record.seq != expected_seq:
                    return VerificationReport.failed(expected_seq, Problem.missing_entry, checked, len(checkpoints))
                if record.prev_hash != prev_hash:
                    return VerificationReport.failed(record.seq, Problem.broken_link, checked, len(checkpoints))
                if compute_hash(prev_hash, record.hashed_fields()) != record.entry_hash:
                    return VerificationReport.failed(record.seq, Problem.altered_entry, checked, len(checkpoints))
                if mac_key is not None:
                    if record.mac is not None:
                        keyed_seen = True
                        if not hmac.compare_digest(record.mac, entry_mac(mac_key, record)):
                            return VerificationReport.failed(
                                record.seq, Problem.forged_entry, checked, len(checkpoints)
                            )
                    elif keyed_seen:
                        return VerificationReport.failed(record.seq, Problem.unkeyed_entry, checked, len(checkpoints))
                signed = checkpoints.get(record.seq)
                if signed is not None and signed.entry_hash != record.entry_hash:
                    return VerificationReport.failed(record.seq, Problem.checkpoint_mismatch, checked, len(checkpoints))
                prev_hash = record.entry_hash
                last_seq = record.seq
                expected_seq += 1
                checked += 1
        beyond = [seq for seq in checkpoints if seq > last_seq]
        if beyond:
            return VerificationReport.failed(last_seq + 1, Problem.truncated, checked, len(checkpoints))
        return VerificationReport(ok=True, entries_checked=checked, checkpoints_checked=len(checkpoints))


def _mac_problem(record: AuditRecord, mac_key: bytes | None, keyed_seen: bool) -> Problem | None:
    """What is wrong with the entry's MAC, if a key is given: forged, or missing after keyed entries began."""
    if mac_key is None:
        return None
    if record.mac is None:
        return Problem.unkeyed_entry if keyed_seen else None
    return None if hmac.compare_digest(record.mac, entry_mac(mac_key, record)) else Problem.forged_entry


@dataclass(slots=True)
class AuditRecord:
    seq: int
    id: uuid.UUID
    occurred_at: datetime
    actor: str
    actor_kind: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    request_id: str | None
    trace_id: str | None
    prev_hash: bytes
    entry_hash: bytes
    #: HMAC of the entry (hex) under the service's key; None for an unkeyed (older) entry.
    mac: str | None = None

    def stored_detail(self) -> dict[str, Any]:
        """``detail`` as stored: with the MAC under ``_mac`` when the entry is keyed."""
        return self.detail if self.mac is None else {**self.detail, MAC_FIELD: self.mac}

    def hashed_fields(self, *, with_mac: bool = True) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": str(self.id),
            "occurred_at": _utc_iso(self.occurred_at),
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.stored_detail() if with_mac else self.detail,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
        }

    def row(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "occurred_at": self.occurred_at,
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.stored_detail(),
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
        }

    @classmethod
    def from_row(cls, row: Any) -> AuditRecord:
        m = row._mapping
        values = {name: m[name] for name in cls.__slots__ if name != "mac"}
        detail = values["detail"]
        mac = None
        if isinstance(detail, dict) and isinstance(detail.get(MAC_FIELD), str):
            detail = dict(detail)
            mac = detail.pop(MAC_FIELD)
        values["detail"] = detail
        return cls(**values, mac=mac)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    schema: str
    seq: int
    entry_hash: bytes
    signature: bytes
    key_id: str

    @staticmethod
    def message(schema: str, seq: int, entry_hash: bytes) -> bytes:
        return f"audit-checkpoint:{schema}:{seq}:".encode() + entry_hash

    @classmethod
    def sign(cls, schema: str, seq: int, entry_hash: bytes, key: Ed25519PrivateKey) -> Checkpoint:
        signature = key.sign(cls.message(schema, seq, entry_hash))
        return cls(
            schema=schema,
            seq=seq,
            entry_hash=entry_hash,
            signature=signature,
            key_id=key_id(key.public_key()),
        )

    def is_signed_by(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.message(self.schema, self.seq, self.entry_hash))
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema": self.schema,
                "seq": self.seq,
                "entry_hash": self.entry_hash.hex(),
                "signature": base64.b64encode(self.signature).decode(),
                "key_id": self.key_id,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> Checkpoint:
        data = json.loads(line)
        return cls(
            schema=data["schema"],
            seq=int(data["seq"]),
            entry_hash=bytes.fromhex(data["entry_hash"]),
            signature=base64.b64decode(data["signature"]),
            key_id=data["key_id"],
        )


def key_id(public_key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def export_checkpoint(cp: Checkpoint, sink: Path) -> None:
    """Append a committed checkpoint to the write-once file."""
    with sink.open("a", encoding="utf-8") as fh:
        fh.write(cp.to_json() + "\n")


async def verify_configured(
    audit_log: AuditLog, session: AsyncSession, *, signing_secret: str, checkpoint_file: str | None
) -> VerificationReport:
    """Verify a service's chain as configured: its checkpoint key, its entry MAC key (installed by the app
    factory) and, when ``checkpoint_file`` (the WORM copy) is set, every checkpoint written there."""
    public_key = signing_key_from_secret(signing_secret).public_key()
    worm = load_checkpoints(Path(checkpoint_file), audit_log.schema) if checkpoint_file else []
    return await audit_log.verify(session, public_key, extra_checkpoints=worm)


def load_checkpoints(sink: Path, schema: str) -> list[Checkpoint]:
    if not sink.exists():
        return []
    found = [Checkpoint.from_json(line) for line in sink.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [cp for cp in found if cp.schema == schema]


class Problem(enum.StrEnum):
    missing_entry = "missing_entry"
    broken_link = "broken_link"
    altered_entry = "altered_entry"
    truncated = "truncated"
    checkpoint_mismatch = "checkpoint_mismatch"
    forged_checkpoint = "forged_checkpoint"
    #: A keyed entry whose MAC does not match (written without the service's key).
    forged_entry = "forged_entry"
    #: An entry without a MAC after keyed entries began.
    unkeyed_entry = "unkeyed_entry"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    ok: bool
    entries_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None = None
    problem: Problem | None = None

    @classmethod
    def failed(cls, seq: int, problem: Problem, checked: int, checkpoints: int) -> VerificationReport:
        return cls(
            ok=False,
            entries_checked=checked,
            checkpoints_checked=checkpoints,
            first_bad_seq=seq,
            problem=problem,
        )


def append_only_trigger_sql(schema: str) -> Sequence[str]:
    """DDL that makes the audit tables refuse UPDATE, DELETE and TRUNCATE."""
    return (
        f"""
        CREATE OR REPLACE FUNCTION "{schema}".audit_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        """,
        f"""CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON "{schema}".audit_entry
            FOR EACH ROW EXECUTE FUNCTION "{schema}".audit_refuse_change();""",
        f"""CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON "{schema}".audit_entry
            FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".audit_refuse_change();""",
        f"""CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON "{schema}".audit_checkpoint
            FOR EACH ROW EXECUTE FUNCTION "{schema}".audit_refuse_change();""",
    )


def audit_head_trigger_sql(schema: str) -> Sequence[str]:
    """DDL that keeps the head row: updated by every append, never deleted or truncated.

    Without it a deleted head would restart the chain at 1 and every later
    append would fail on the entry's primary key (closed, but an outage).
    """
    return (
        f"""CREATE TRIGGER audit_head_kept BEFORE DELETE ON "{schema}".audit_head
            FOR EACH ROW EXECUTE FUNCTION "{schema}".audit_refuse_change();""",
        f"""CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON "{schema}".audit_head
            FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".audit_refuse_change();""",
    )
