"""What the KPI page reads from other services, through the gateway with incidents' service token.

- risk ``GET /v1/risk/internal/alerts/summary?from=&to=`` (scope ``risk:read``; contract in
  docs/contracts.md): alerts created in the period per analyst and their outcomes.

A source that cannot answer leaves its figures out (null) and is named in the report's
``sources_unavailable``: the KPI page still answers with what incidents itself holds.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError

from kit.errors import ServiceUnavailable
from kit.http import ServiceClient
from services.incidents.kpis.schemas import AlertsSummary, AnalystAlerts

ALERTS_SUMMARY = "/v1/risk/internal/alerts/summary"

logger = logging.getLogger("incidents.kpis")


async def alerts_per_analyst(client: ServiceClient, start: datetime, end: datetime) -> list[AnalystAlerts] | None:
    """Risk's alerts per analyst over [start, end), or None when risk cannot answer."""
    params = {"from": start.isoformat(), "to": end.isoformat()}
    try:
        response = await client.request("GET", ALERTS_SUMMARY, params=params)
    except ServiceUnavailable as exc:
        logger.warning("KPI source risk unavailable: %s", exc)
        return None
    if response.status_code != 200:
        logger.warning("KPI source risk answered %s", response.status_code)
        return None
    try:
        return AlertsSummary.model_validate_json(response.content).analysts
    except ValidationError as exc:
        logger.warning("KPI source risk gave an unexpected answer (%d errors)", exc.error_count())
        return None
