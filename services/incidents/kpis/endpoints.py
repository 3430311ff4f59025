"""KPI route: JSON or CSV over any period."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.incidents.governance.deps import Gateway, Settings, Today
from services.incidents.kpis import service
from services.incidents.kpis.schemas import KpiReport

staff = APIRouter(prefix="/staff", tags=["kpis"])


class Format(enum.StrEnum):
    json = "json"
    csv = "csv"


@staff.get(
    "/kpis",
    response_model=KpiReport,
    summary="Incident KPIs over a period",
    responses={200: {"content": {"text/csv": {}}}},
)
async def kpis(  # noqa: PLR0917 (dependencies and query parameters)
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("incident:read"))],
    client: Gateway,
    settings: Settings,
    today: Today,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    format: Format = Format.json,
) -> KpiReport | Response:
    """Counts and rates by level and type of the incidents opened in [from, to), time to verify,
    contain and resolve (p50/p90 seconds), SLA breaches in the period, customer complaints;
    risk's alerts per analyst and their outcomes (null, with `sources_unavailable: ["risk"]`, when
    risk cannot answer), the vulnerability fix cycle; `format=csv` gives `metric,dimension,value` rows."""
    report = await service.report(
        session,
        start,
        end,
        client=client,
        today=today,
        fix_working_days=settings.vulnerability_fix_working_days,
    )
    if format is Format.csv:
        return Response(
            service.as_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="incident-kpis.csv"'},
        )
    return report
