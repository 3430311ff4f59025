"""Retention of governance records: the 5-year minimum outside development, archive before purge."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select

from kit.retention import RetentionTooShort
from services.incidents.config import IncidentsSettings
from services.incidents.governance.retention.service import purge_all
from services.incidents.models import AuditFinding, AuditPlan, AuditRemediation, Vulnerability
from tests.incidents.governance.conftest import Governance

NOW = datetime(2032, 6, 1, tzinfo=UTC)


def first_line(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text().splitlines()[0])
    return data


def test_production_refuses_less_than_five_years() -> None:
    with pytest.raises((RetentionTooShort, ValidationError), match="incident_file_retention_days"):
        IncidentsSettings(
            environment="production",
            database_url=SecretStr("postgresql+asyncpg://incidents@db.example/suite?sslmode=verify-full"),
            incident_file_retention_days=365,
            audit_signing_key=SecretStr("k" * 40),
            client_secret=SecretStr("s" * 40),
        )


async def test_old_closed_records_are_archived_then_purged_and_open_work_is_kept(
    gov: Governance, tmp_path: Path
) -> None:
    settings = gov.app.state.settings.model_copy(update={"archive_dir": str(tmp_path)})
    async with gov.app.state.database.sessionmaker() as session:
        old_closed = AuditPlan(
            id=uuid.uuid4(),
            title="2026 audit",
            scope="s",
            period_from=date(2026, 1, 1),
            period_to=date(2026, 3, 31),
            auditors=["a"],
            criteria=["c"],
            status="closed",
            created_by="a",
        )
        old_open = AuditPlan(
            id=uuid.uuid4(),
            title="still open",
            scope="s",
            period_from=date(2026, 1, 1),
            period_to=date(2026, 3, 31),
            auditors=["a"],
            criteria=["c"],
            status="fieldwork",
            created_by="a",
        )
        recent = AuditPlan(
            id=uuid.uuid4(),
            title="recent",
            scope="s",
            period_from=date(2032, 1, 1),
            period_to=date(2032, 3, 31),
            auditors=["a"],
            criteria=["c"],
            status="closed",
            created_by="a",
        )
        session.add_all([old_closed, old_open, recent])
        await session.flush()
        finding = AuditFinding(
            id=uuid.uuid4(),
            audit_id=old_closed.id,
            title="f",
            description="d",
            rating="low",
            recommendation="r",
            source="manual",
            detail={},
            status="closed",
            created_by="a",
        )
        session.add(finding)
        await session.flush()
        session.add(
            AuditRemediation(
                id=uuid.uuid4(),
                finding_id=finding.id,
                action="x",
                owner="o",
                due_on=date(2026, 4, 1),
                status="verified",
                created_by="a",
            )
        )
        for status, found in [("fixed", date(2026, 2, 1)), ("open", date(2026, 2, 1)), ("fixed", date(2032, 1, 5))]:
            session.add(
                Vulnerability(
                    id=uuid.uuid4(),
                    title=f"{status} {found}",
                    severity="low",
                    system="s",
                    owner="o",
                    found_on=found,
                    working_days=15,
                    due_on=found + timedelta(days=21),
                    status=status,
                    fixed_on=found + timedelta(days=3) if status == "fixed" else None,
                    note="",
                    created_by="a",
                )
            )
        await session.commit()

    async with gov.app.state.database.sessionmaker() as session:
        runs = await purge_all(session, settings, actor="cli", now=NOW)
        await session.commit()
    by_dataset = {run.dataset: run for run in runs}
    assert by_dataset["audits"].purged == 1
    assert by_dataset["vulnerabilities"].purged == 1
    archive = Path(by_dataset["audits"].archive_path or "")
    assert archive.parent == tmp_path
    audit_file = first_line(archive)
    assert audit_file["audit"]["title"] == "2026 audit"
    assert len(audit_file["findings"]) == 1
    assert len(audit_file["remediations"]) == 1

    async with gov.app.state.database.sessionmaker() as session:
        titles = sorted((await session.execute(select(AuditPlan.title))).scalars())
        left = (await session.execute(select(func.count()).select_from(Vulnerability))).scalar_one()
        findings = (await session.execute(select(func.count()).select_from(AuditFinding))).scalar_one()
    assert titles == ["recent", "still open"]
    assert (left, findings) == (2, 0)

    listed = await gov.http.get("/staff/retention/purges", headers=gov.staff("audit:read"))
    assert {run["dataset"] for run in listed.json()} >= {"audits", "vulnerabilities"}
    refused = await gov.http.post("/staff/retention/purges", headers=gov.staff("audit:read"))
    assert refused.status_code == 403
