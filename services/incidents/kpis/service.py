"""KPIs over any period: incident counts and rates by level and type, time to verify, contain and
resolve (p50/p90), SLA breaches, customer complaints (takeover reports from customers); risk's
alerts per analyst and their outcomes (read through the gateway; null when risk cannot answer) and
the vulnerability fix cycle (governance's figures, the same as `/staff/vulnerabilities/fix-cycle`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from kit.http import ServiceClient
from services.incidents.errors import InvalidPeriod
from services.incidents.governance.vulnerabilities import service as vulnerabilities
from services.incidents.kpis import repository, sources
from services.incidents.kpis.schemas import Durations, KpiReport
from services.incidents.models import Incident, IncidentSource

MAX_DAYS = 3660


async def report(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    client: ServiceClient,
    today: date,
    fix_working_days: int,
) -> KpiReport:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidPeriod("`from` and `to` need a time zone")
    if end <= start:
        raise InvalidPeriod("`to` must be after `from`")
    days = (end - start).total_seconds() / 86_400
    if days > MAX_DAYS:
        raise InvalidPeriod(f"a period is at most {MAX_DAYS} days")
    by_level = await repository.counts_by(session, Incident.level, start, end)
    by_type = await repository.counts_by(session, Incident.type, start, end)
    total = sum(by_level.values())
    resolved = func.coalesce(Incident.recovered_at, Incident.closed_at)
    durations = []
    for until in (Incident.verified_at, Incident.contained_at, resolved):
        n, p50, p90 = await repository.percentiles(session, until, start, end)
        durations.append(Durations(n=n, p50_seconds=p50, p90_seconds=p90))
    breaches = await repository.breaches_by_kind(session, start, end)
    by_source = await repository.reports_by_source(session, start, end)
    # the fix cycle counts whole days: found on or after from's date, on or before the last instant's
    fix_cycle = await vulnerabilities.fix_cycle(
        session,
        period_from=start.astimezone(UTC).date(),
        period_to=(end - timedelta(microseconds=1)).astimezone(UTC).date(),
        today=today,
        target_working_days=fix_working_days,
    )
    alerts = await sources.alerts_per_analyst(client, start, end)
    return KpiReport(
        start=start,
        end=end,
        days=days,
        incidents=total,
        incidents_per_day=total / days,
        by_level=by_level,
        by_type=by_type,
        rate_per_day_by_level={k: v / days for k, v in by_level.items()},
        rate_per_day_by_type={k: v / days for k, v in by_type.items()},
        time_to_verify=durations[0],
        time_to_contain=durations[1],
        time_to_resolve=durations[2],
        sla_breaches=sum(breaches.values()),
        sla_breaches_by_clock=breaches,
        customer_complaints=by_source.get(IncidentSource.customer_report.value, 0),
        reports_by_source=by_source,
        alerts_per_analyst=alerts,
        vulnerability_fix_cycle=fix_cycle,
        sources_unavailable=["risk"] if alerts is None else [],
    )


def as_csv(kpis: KpiReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["metric", "dimension", "value"])
    writer.writerows(kpis.rows())
    return buffer.getvalue()
