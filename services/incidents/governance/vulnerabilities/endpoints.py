"""Staff routes of vulnerabilities (read: risk:read; report, fix, accept: risk:modify)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from kit.auth import StaffUser
from kit.db import DBSession
from services.incidents.governance.deps import RiskReader, RiskWriter, Settings, Today
from services.incidents.governance.stats import to_csv
from services.incidents.governance.vulnerabilities import service
from services.incidents.governance.vulnerabilities.schemas import (
    Acceptance,
    FixCycle,
    FixReport,
    Severity,
    VulnerabilityCreate,
    VulnerabilityStatus,
    VulnerabilityView,
)

staff = APIRouter(prefix="/staff/vulnerabilities", tags=["vulnerabilities"])


@staff.post("", response_model=VulnerabilityView, status_code=201, dependencies=[RiskWriter])
async def report_vulnerability(
    data: VulnerabilityCreate, staff_user: StaffUser, session: DBSession, today: Today, settings: Settings
) -> VulnerabilityView:
    """Record a vulnerability; it is due the configured number of mainland working days after discovery."""
    return await service.report(
        session,
        data,
        actor=staff_user.subject,
        today=today,
        default_working_days=settings.vulnerability_fix_working_days,
    )


@staff.get("", response_model=list[VulnerabilityView], dependencies=[RiskReader])
async def list_vulnerabilities(
    *,
    session: DBSession,
    today: Today,
    status: Annotated[VulnerabilityStatus | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
) -> list[VulnerabilityView]:
    """Vulnerabilities, earliest due first; ``overdue=true`` lists those past their date."""
    return await service.search(
        session,
        today,
        status=status.value if status else None,
        severity=severity.value if severity else None,
        overdue=overdue,
    )


def _period(period_from: date | None, period_to: date | None, today: date) -> tuple[date, date]:
    return period_from or today.replace(month=1, day=1), period_to or today


@staff.get("/fix-cycle", response_model=FixCycle, dependencies=[RiskReader])
async def fix_cycle(
    session: DBSession,
    today: Today,
    settings: Settings,
    period_from: Annotated[
        date | None, Query(alias="from", description="Found on or after (default 1 January).")
    ] = None,
    period_to: Annotated[date | None, Query(alias="to", description="Found on or before (default today).")] = None,
) -> FixCycle:
    """The fix-cycle figures of the vulnerabilities found in the period (KPI page), as JSON."""
    start, end = _period(period_from, period_to, today)
    return await service.fix_cycle(
        session,
        period_from=start,
        period_to=end,
        today=today,
        target_working_days=settings.vulnerability_fix_working_days,
    )


@staff.get(
    "/fix-cycle.csv",
    response_class=Response,
    dependencies=[RiskReader],
    responses={200: {"content": {"text/csv": {}}, "description": "The same figures as CSV."}},
)
async def fix_cycle_csv(
    session: DBSession,
    today: Today,
    settings: Settings,
    period_from: Annotated[date | None, Query(alias="from")] = None,
    period_to: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    """The fix-cycle figures as CSV (one row per severity and one for all)."""
    start, end = _period(period_from, period_to, today)
    cycle = await service.fix_cycle(
        session,
        period_from=start,
        period_to=end,
        today=today,
        target_working_days=settings.vulnerability_fix_working_days,
    )
    return Response(
        to_csv(service.CSV_HEADER, service.fix_cycle_csv_rows(cycle)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="fix-cycle-{start}-{end}.csv"'},
    )


@staff.get("/{vulnerability_id}", response_model=VulnerabilityView, dependencies=[RiskReader])
async def get_vulnerability(vulnerability_id: uuid.UUID, session: DBSession, today: Today) -> VulnerabilityView:
    return await service.get(session, vulnerability_id, today)


@staff.post("/{vulnerability_id}/fix", response_model=VulnerabilityView, dependencies=[RiskWriter])
async def fix_vulnerability(
    vulnerability_id: uuid.UUID, data: FixReport, staff_user: StaffUser, session: DBSession, today: Today
) -> VulnerabilityView:
    """Record the fix; its cycle is counted in working days from discovery."""
    return await service.fix(session, vulnerability_id, data, actor=staff_user.subject, today=today)


@staff.post("/{vulnerability_id}/accept", response_model=VulnerabilityView, dependencies=[RiskWriter])
async def accept_vulnerability(
    vulnerability_id: uuid.UUID, data: Acceptance, staff_user: StaffUser, session: DBSession, today: Today
) -> VulnerabilityView:
    """Accept the risk instead of fixing (with the reason)."""
    return await service.accept(session, vulnerability_id, data, actor=staff_user.subject, today=today)
