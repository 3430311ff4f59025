"""``GET /internal/audit-samples/unmasked-reads`` (scope ``audit:sample``): for sampling audits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kit.auth import Principal, RequireScope, ServiceCaller
from kit.db import DBSession
from kit.errors import BadRequest
from services.vault.audit_samples import service
from services.vault.audit_samples.schemas import ReadSample
from services.vault.state import VaultDep

internal_router = APIRouter(prefix="/internal/audit-samples", tags=["audit samples"])


@internal_router.get("/unmasked-reads", response_model=ReadSample, summary="Unmasked reads of personal data")
async def unmasked_reads(
    *,
    session: DBSession,
    vault: VaultDep,
    _service: ServiceCaller,
    _scope: Annotated[Principal, Depends(RequireScope("audit:sample"))],
    since: datetime,
    until: datetime,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> ReadSample:
    """Successful unmasked reads in [since, until): who, purpose, fields, approval and whether one was needed.

    Ids and field names only, never values."""
    if since.tzinfo is None or until.tzinfo is None or since >= until:
        raise BadRequest("the period needs two ordered timestamps with a time zone")
    return await service.read_sample(session, vault.settings, since=since, until=until, after=after, limit=limit)
