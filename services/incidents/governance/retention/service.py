"""Retention of incidents' governance records (M7.4: audit records at least 5 years).

``incident_file_retention_days`` (never below 5 years outside development,
see :mod:`kit.retention`) sets the cutoff. Each data set past it is first
written to an archive file (JSON lines, its SHA-256 kept with the run), and
only then deleted, in the caller's transaction: when the delete fails, the
archive is an extra copy, never a gap. Audits are purged only once closed,
vulnerabilities once fixed or accepted; open work is never purged. Each run
is recorded and appended to the audit chain (the chain itself is never purged).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.retention import row_dict, write_archive
from services.incidents.config import IncidentsSettings
from services.incidents.governance.retention import repository
from services.incidents.governance.retention.schemas import RetentionRunView
from services.incidents.models import (
    AuditVerificationRun,
    RegisterReview,
    RetentionRun,
    Vulnerability,
    audit_log,
)


async def _record(
    session: AsyncSession,
    *,
    dataset: str,
    cutoff: datetime,
    lines: Sequence[dict[str, Any]],
    archive_dir: Path,
    actor: str,
    now: datetime,
) -> RetentionRun:
    path: str | None = None
    digest: str | None = None
    if lines:
        archive = await asyncio.to_thread(write_archive, archive_dir, f"incidents-{dataset}", lines, now=now)
        path, digest = str(archive.path), archive.sha256
    run = RetentionRun(
        id=uuid.uuid4(),
        dataset=dataset,
        cutoff=cutoff,
        archived=len(lines),
        purged=len(lines),
        archive_path=path,
        archive_sha256=digest,
        actor=actor,
    )
    await repository.add_run(session, run)
    await audit_log.append(
        session,
        actor=actor,
        actor_kind="system" if actor == "cli" else "staff",
        action="retention.purged",
        target=dataset,
        detail={"cutoff": cutoff.isoformat(), "purged": len(lines), "archive_sha256": digest},
    )
    return run


async def purge_all(
    session: AsyncSession, settings: IncidentsSettings, *, actor: str, now: datetime | None = None
) -> list[RetentionRunView]:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.incident_file_retention_days)
    archive_dir = Path(settings.archive_dir)
    runs: list[RetentionRun] = []

    async def record(dataset: str, lines: Sequence[dict[str, Any]]) -> None:
        runs.append(
            await _record(
                session, dataset=dataset, cutoff=cutoff, lines=lines, archive_dir=archive_dir, actor=actor, now=now
            )
        )

    audits = await repository.old_audits(session, cutoff.date())
    await record("audits", audits)
    await repository.delete_audits(session, [item["audit"]["id"] for item in audits])

    verification = await repository.old_verification_runs(session, cutoff)
    await record("verification_runs", [row_dict(r) for r in verification])
    await repository.delete_rows(session, AuditVerificationRun, [r.id for r in verification])

    vulnerabilities = await repository.old_vulnerabilities(session, cutoff.date())
    await record("vulnerabilities", [row_dict(v) for v in vulnerabilities])
    await repository.delete_rows(session, Vulnerability, [v.id for v in vulnerabilities])

    reviews = await repository.old_reviews(session, cutoff.date())
    await record("register_reviews", [row_dict(r) for r in reviews])
    await repository.delete_rows(session, RegisterReview, [r.id for r in reviews])
    return [RetentionRunView.model_validate(run, from_attributes=True) for run in runs]


async def recent(session: AsyncSession, limit: int) -> list[RetentionRunView]:
    return [
        RetentionRunView.model_validate(run, from_attributes=True)
        for run in await repository.recent_runs(session, limit)
    ]
