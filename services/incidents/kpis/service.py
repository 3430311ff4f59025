"""KPIs over any period: incident counts and rates by level and type, time to verify, contain and
resolve (p50/p90), SLA breaches, customer complaints (takeover reports from customers)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.incidents.errors import InvalidPeriod
from services.incidents.kpis import repository
from services.incidents.kpis.schemas import Durations, KpiReport
from services.incidents.models import Incident, IncidentSource

MAX_DAYS = 3660


async def report(session: AsyncSession, start: datetime, end: datetime) -> KpiReport:
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
    sources = await repository.reports_by_source(session, start, end)
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
        customer_complaints=sources.get(IncidentSource.customer_report.value, 0),
        reports_by_source=sources,
    )


def as_csv(kpis: KpiReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["metric", "dimension", "value"])
    writer.writerows(kpis.rows())
    return buffer.getvalue()
