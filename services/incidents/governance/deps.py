"""Request dependencies of the governance routers (settings, the gateway client, the clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request

from kit.http import ServiceClient
from kit.permissions import RequirePermission
from services.incidents.config import IncidentsSettings


async def get_settings(request: Request) -> IncidentsSettings:
    settings = request.app.state.settings
    assert isinstance(settings, IncidentsSettings)
    return settings


async def get_service_client(request: Request) -> ServiceClient:
    client: ServiceClient = request.app.state.service_client
    return client


async def get_today(request: Request) -> date:
    """Today in UTC; tests pin it with ``app.state.governance_today``."""
    pinned = getattr(request.app.state, "governance_today", None)
    return pinned if isinstance(pinned, date) else datetime.now(UTC).date()


Settings = Annotated[IncidentsSettings, Depends(get_settings)]
Gateway = Annotated[ServiceClient, Depends(get_service_client)]
Today = Annotated[date, Depends(get_today)]

#: Reading and running audits, their evidence and the chain verification.
AuditReader = Depends(RequirePermission("audit:read"))
AuditVerifier = Depends(RequirePermission("audit:verify"))
#: The register, vulnerabilities and KPIs.
RiskReader = Depends(RequirePermission("risk:read"))
RiskWriter = Depends(RequirePermission("risk:modify"))
