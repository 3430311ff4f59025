"""Vulnerabilities and their fix cycle (R-III.3.1: fixed within 15 working days).

A vulnerability is due ``working_days`` mainland working days after it was
found (:mod:`.calendar`); one still open after its due date, or fixed after
it, is overdue. The fix-cycle figures feed the KPI page: per severity and in
total, what was found in a period, how much was fixed on time, how long fixes
took in working days (p50, p90, mean), and what is open past its date.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import flush_pending
from services.incidents.governance.errors import InvalidPeriod, InvalidState, RiskNotFound, VulnerabilityNotFound
from services.incidents.governance.stats import mean, percentile
from services.incidents.governance.vulnerabilities import repository
from services.incidents.governance.vulnerabilities.calendar import mainland_calendar
from services.incidents.governance.vulnerabilities.schemas import (
    Acceptance,
    FixCycle,
    FixCycleRow,
    FixReport,
    Severity,
    VulnerabilityCreate,
    VulnerabilityStatus,
    VulnerabilityView,
)
from services.incidents.models import Vulnerability, audit_log

CSV_HEADER = (
    "severity",
    "found",
    "fixed",
    "fixed_on_time",
    "fixed_late",
    "open",
    "open_overdue",
    "accepted",
    "on_time_rate",
    "fix_days_p50",
    "fix_days_p90",
    "fix_days_mean",
)


def is_overdue(row: Vulnerability, today: date) -> bool:
    if row.status == VulnerabilityStatus.open:
        return today > row.due_on
    if row.status == VulnerabilityStatus.fixed and row.fixed_on is not None:
        return row.fixed_on > row.due_on
    return False


def view(row: Vulnerability, today: date) -> VulnerabilityView:
    left = None
    if row.status == VulnerabilityStatus.open:
        left = mainland_calendar().working_days_between(today, row.due_on)
    return VulnerabilityView(
        id=row.id,
        title=row.title,
        severity=Severity(row.severity),
        system=row.system,
        reference=row.reference,
        owner=row.owner,
        risk_id=row.risk_id,
        found_on=row.found_on,
        working_days=row.working_days,
        due_on=row.due_on,
        status=VulnerabilityStatus(row.status),
        fixed_on=row.fixed_on,
        fix_working_days=row.fix_working_days,
        overdue=is_overdue(row, today),
        working_days_left=left,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def report(
    session: AsyncSession, data: VulnerabilityCreate, *, actor: str, today: date, default_working_days: int
) -> VulnerabilityView:
    if data.found_on > today:
        raise InvalidPeriod("a vulnerability cannot be found in the future")
    if data.risk_id is not None and not await repository.risk_exists(session, data.risk_id):
        raise RiskNotFound()
    days = data.working_days or default_working_days
    row = Vulnerability(
        id=uuid.uuid4(),
        title=data.title,
        severity=data.severity.value,
        system=data.system,
        reference=data.reference,
        owner=data.owner,
        risk_id=data.risk_id,
        found_on=data.found_on,
        working_days=days,
        due_on=mainland_calendar().add_working_days(data.found_on, days),
        status=VulnerabilityStatus.open.value,
        note=data.note,
        created_by=actor,
    )
    await repository.add(session, row)
    await audit_log.append(
        session,
        actor=actor,
        action="vulnerability.reported",
        target=str(row.id),
        detail={"severity": row.severity, "due_on": row.due_on.isoformat(), "working_days": days},
    )
    return view(row, today)


async def _get(session: AsyncSession, vulnerability_id: uuid.UUID, *, lock: bool = False) -> Vulnerability:
    row = await repository.get(session, vulnerability_id, lock=lock)
    if row is None:
        raise VulnerabilityNotFound()
    return row


async def get(session: AsyncSession, vulnerability_id: uuid.UUID, today: date) -> VulnerabilityView:
    return view(await _get(session, vulnerability_id), today)


async def fix(
    session: AsyncSession, vulnerability_id: uuid.UUID, data: FixReport, *, actor: str, today: date
) -> VulnerabilityView:
    row = await _get(session, vulnerability_id, lock=True)
    if row.status != VulnerabilityStatus.open:
        raise InvalidState(f"the vulnerability is {row.status}")
    if data.fixed_on < row.found_on or data.fixed_on > today:
        raise InvalidPeriod("the fix date lies between the discovery and today")
    row.status = VulnerabilityStatus.fixed.value
    row.fixed_on = data.fixed_on
    row.fix_working_days = mainland_calendar().working_days_between(row.found_on, data.fixed_on)
    if data.note:
        row.note = f"{row.note}\n{data.note}".strip()
    await flush_pending(session)
    await audit_log.append(
        session,
        actor=actor,
        action="vulnerability.fixed",
        target=str(row.id),
        detail={
            "fixed_on": data.fixed_on.isoformat(),
            "working_days": row.fix_working_days,
            "late": is_overdue(row, today),
        },
    )
    return view(row, today)


async def accept(
    session: AsyncSession, vulnerability_id: uuid.UUID, data: Acceptance, *, actor: str, today: date
) -> VulnerabilityView:
    """Accept the risk of not fixing (recorded with the reason; it leaves the fix-cycle figures' open count)."""
    row = await _get(session, vulnerability_id, lock=True)
    if row.status != VulnerabilityStatus.open:
        raise InvalidState(f"the vulnerability is {row.status}")
    row.status = VulnerabilityStatus.accepted.value
    row.note = f"{row.note}\naccepted: {data.reason}".strip()
    await flush_pending(session)
    await audit_log.append(
        session,
        actor=actor,
        action="vulnerability.accepted",
        target=str(row.id),
        detail={"reason_length": len(data.reason)},
    )
    return view(row, today)


async def search(
    session: AsyncSession,
    today: date,
    *,
    status: str | None = None,
    severity: str | None = None,
    overdue: bool | None = None,
) -> list[VulnerabilityView]:
    views = [view(row, today) for row in await repository.search(session, status=status, severity=severity)]
    if overdue is not None:
        views = [v for v in views if v.overdue is overdue]
    return views


def _row(label: str, rows: Sequence[Vulnerability], today: date) -> FixCycleRow:
    fixed = [r for r in rows if r.status == VulnerabilityStatus.fixed]
    late = [r for r in fixed if is_overdue(r, today)]
    still_open = [r for r in rows if r.status == VulnerabilityStatus.open]
    days = [float(r.fix_working_days) for r in fixed if r.fix_working_days is not None]
    return FixCycleRow(
        severity=label,
        found=len(rows),
        fixed=len(fixed),
        fixed_on_time=len(fixed) - len(late),
        fixed_late=len(late),
        open=len(still_open),
        open_overdue=sum(1 for r in still_open if is_overdue(r, today)),
        accepted=sum(1 for r in rows if r.status == VulnerabilityStatus.accepted),
        on_time_rate=round((len(fixed) - len(late)) / len(fixed), 4) if fixed else None,
        fix_days_p50=percentile(days, 0.5),
        fix_days_p90=percentile(days, 0.9),
        fix_days_mean=mean(days),
    )


async def fix_cycle(
    session: AsyncSession, *, period_from: date, period_to: date, today: date, target_working_days: int
) -> FixCycle:
    """Fix-cycle figures of the vulnerabilities found in the period, per severity and in total."""
    if period_from > period_to:
        raise InvalidPeriod()
    rows = await repository.search(session, found_from=period_from, found_to=period_to)
    table = [_row(severity.value, [r for r in rows if r.severity == severity], today) for severity in Severity]
    table.append(_row("all", rows, today))
    return FixCycle(
        period_from=period_from, period_to=period_to, as_of=today, target_working_days=target_working_days, rows=table
    )


def fix_cycle_csv_rows(cycle: FixCycle) -> list[list[object]]:
    return [[getattr(row, column) for column in CSV_HEADER] for row in cycle.rows]
