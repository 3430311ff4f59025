"""``GET /internal/audit/verification``: every service proves its own audit chain on request;
``GET /internal/audit/entries``: it exports a range of entries with their hashes (audit evidence).

The app factory mounts this router in every service that has an audit log.
It walks the chain with :meth:`kit.audit.AuditLog.verify` against the
checkpoints stored in the database and, when configured, the copies in the
write-once checkpoint file (``audit_checkpoint_file``), and answers with the
first bad entry. Only service tokens with the ``audit:verify`` scope may ask
(the incidents service's suite-wide verification holds it).

Verification only reads; it never changes the chain, so a caller may repeat it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.audit import AuditLog, AuditRecord, VerificationReport, load_checkpoints, signing_key_from_secret
from kit.auth import Principal, RequireScope, ServiceCaller
from kit.db import DBSession
from kit.errors import BadRequest
from kit.settings import ServiceSettings

VERIFY_SCOPE = "audit:verify"
VERIFICATION_PATH = "/internal/audit/verification"
ENTRIES_PATH = "/internal/audit/entries"
MAX_ENTRIES_PAGE = 1000


class FirstBadEntry(BaseModel):
    seq: int = Field(description="Sequence number of the first entry that is not as written.")
    problem: str = Field(
        description=("missing_entry, broken_link, altered_entry, truncated, checkpoint_mismatch or forged_checkpoint.")
    )


class CheckpointStatus(BaseModel):
    checked: int = Field(description="Signed checkpoints checked (database and write-once file).")
    latest_seq: int | None = Field(description="Sequence number of the newest signed checkpoint.")
    file_copies: int = Field(description="Checkpoints read from the write-once file (0 when none is configured).")


class AuditVerification(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "vault",
                    "ok": False,
                    "entries": 41,
                    "first_bad": {"seq": 42, "problem": "altered_entry"},
                    "checkpoints": {"checked": 3, "latest_seq": 300, "file_copies": 3},
                }
            ]
        }
    )

    service: str
    ok: bool
    entries: int = Field(description="Entries checked before the first bad one (all of them when ok).")
    first_bad: FirstBadEntry | None
    checkpoints: CheckpointStatus


async def verify_chain(session: AsyncSession, audit_log: AuditLog, settings: ServiceSettings) -> AuditVerification:
    """Verify a service's chain with its configured key and checkpoint copies."""
    public_key = signing_key_from_secret(settings.audit_signing_key.get_secret_value()).public_key()
    file_copies = (
        await asyncio.to_thread(load_checkpoints, Path(settings.audit_checkpoint_file), audit_log.schema)
        if settings.audit_checkpoint_file
        else []
    )
    report = await audit_log.verify(session, public_key, extra_checkpoints=file_copies)
    stored = await audit_log.stored_checkpoints(session)
    seqs = [cp.seq for cp in stored] + [cp.seq for cp in file_copies]
    return _as_response(settings.service_name, report, latest=max(seqs) if seqs else None, file_copies=len(file_copies))


def _as_response(
    service: str, report: VerificationReport, *, latest: int | None, file_copies: int
) -> AuditVerification:
    first_bad = (
        FirstBadEntry(seq=report.first_bad_seq, problem=str(report.problem))
        if report.first_bad_seq is not None and report.problem is not None
        else None
    )
    return AuditVerification(
        service=service,
        ok=report.ok,
        entries=report.entries_checked,
        first_bad=first_bad,
        checkpoints=CheckpointStatus(checked=report.checkpoints_checked, latest_seq=latest, file_copies=file_copies),
    )


class ExportedEntry(BaseModel):
    seq: int
    id: str
    occurred_at: str
    actor: str
    actor_kind: str
    action: str
    target: str | None
    outcome: str
    detail: dict[str, Any]
    request_id: str | None
    trace_id: str | None
    prev_hash: str = Field(description="Hex SHA-256 of the previous entry.")
    entry_hash: str = Field(description="Hex SHA-256 of this entry (recomputable by `kit.audit.compute_hash`).")


class EntriesPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "permissions",
                    "entries": [
                        {
                            "seq": 7,
                            "id": "9d7c1c5e-52a8-4a4e-a0c4-3a4b2d6f7e81",
                            "occurred_at": "2026-11-21T09:12:03.511000+00:00",
                            "actor": "3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10",
                            "actor_kind": "staff",
                            "action": "grant.created",
                            "target": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11",
                            "outcome": "success",
                            "detail": {"role": "auditor"},
                            "request_id": "req-1",
                            "trace_id": None,
                            "prev_hash": "00" * 32,
                            "entry_hash": "ab" * 32,
                        }
                    ],
                    "next_seq": None,
                }
            ]
        }
    )

    service: str
    entries: list[ExportedEntry]
    next_seq: int | None = Field(description="Pass as `seq_from` for the next page; null once `seq_to` is reached.")


async def export_entries(
    session: AsyncSession, audit_log: AuditLog, seq_from: int, seq_to: int, limit: int
) -> tuple[list[ExportedEntry], int | None]:
    t = audit_log.entries
    rows = (
        await session.execute(select(t).where(t.c.seq >= seq_from, t.c.seq <= seq_to).order_by(t.c.seq).limit(limit))
    ).all()
    entries = []
    for row in rows:
        record = AuditRecord.from_row(row)
        fields = record.hashed_fields()
        entries.append(
            ExportedEntry(
                **{key: value for key, value in fields.items() if key not in ("prev_hash", "entry_hash")},
                prev_hash=record.prev_hash.hex(),
                entry_hash=record.entry_hash.hex(),
            )
        )
    following = entries[-1].seq + 1 if len(entries) == limit and entries[-1].seq < seq_to else None
    return entries, following


def audit_verification_router(audit_log: AuditLog) -> APIRouter:
    """The route the app factory mounts (authenticated; the scope is checked here)."""
    router = APIRouter(tags=["audit"])

    @router.get(
        VERIFICATION_PATH,
        summary="Verify this service's audit chain and checkpoints (scope audit:verify)",
        response_model=AuditVerification,
    )
    async def verification(
        request: Request,
        session: DBSession,
        _service: ServiceCaller,
        _caller: Annotated[Principal, Depends(RequireScope(VERIFY_SCOPE))],
    ) -> Any:
        """Walk this service's audit chain and its signed checkpoints; report the first entry not as written.

        Read-only; for the suite-wide verification of the incidents service (scope `audit:verify`).
        """
        settings: ServiceSettings = request.app.state.settings
        return await verify_chain(session, audit_log, settings)

    @router.get(
        ENTRIES_PATH,
        summary="Export a range of this service's audit entries (scope audit:verify)",
        response_model=EntriesPage,
    )
    async def entries(
        *,
        request: Request,
        session: DBSession,
        _service: ServiceCaller,
        _caller: Annotated[Principal, Depends(RequireScope(VERIFY_SCOPE))],
        seq_from: Annotated[int, Query(ge=1)],
        seq_to: Annotated[int, Query(ge=1)],
        limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES_PAGE)] = MAX_ENTRIES_PAGE,
    ) -> Any:
        """The entries from `seq_from` to `seq_to` with their hashes, as audit evidence (ids, never personal data).

        Each entry's hash can be recomputed from its fields and the previous hash, so an export proves itself.
        """
        if seq_from > seq_to:
            raise BadRequest("seq_from is after seq_to")
        found, following = await export_entries(session, audit_log, seq_from, seq_to, limit)
        settings: ServiceSettings = request.app.state.settings
        return EntriesPage(service=settings.service_name, entries=found, next_seq=following)

    return router
