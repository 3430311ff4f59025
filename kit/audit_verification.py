"""``GET /internal/audit/verification``: every service proves its own audit chain on request.

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

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from kit.audit import AuditLog, VerificationReport, load_checkpoints, signing_key_from_secret
from kit.auth import Principal, RequireScope, ServiceCaller
from kit.db import DBSession
from kit.settings import ServiceSettings

VERIFY_SCOPE = "audit:verify"
VERIFICATION_PATH = "/internal/audit/verification"


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

    return router
