"""``GET /internal/audit-samples/grants`` (scope ``audit:sample``): grants of a period for sampling audits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kit.auth import Principal, RequireScope, ServiceCaller
from kit.db import DBSession
from kit.errors import BadRequest
from services.permissions.audit_samples import service
from services.permissions.audit_samples.schemas import GrantSample

internal = APIRouter(prefix="/internal/audit-samples", tags=["audit samples"])


@internal.get("/grants", response_model=GrantSample, summary="Grants made in a period, with training at grant time")
async def grants(
    *,
    session: DBSession,
    _service: ServiceCaller,
    _scope: Annotated[Principal, Depends(RequireScope("audit:sample"))],
    created_from: datetime,
    created_to: datetime,
    high_risk_only: bool = True,
    after: Annotated[uuid.UUID | None, Query(description="The cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> GrantSample:
    """Who requested and who approved each grant, and whether a training record was in force then."""
    if created_from.tzinfo is None or created_to.tzinfo is None or created_from >= created_to:
        raise BadRequest("the period needs two ordered timestamps with a time zone")
    return await service.grant_sample(
        session,
        created_from=created_from,
        created_to=created_to,
        high_risk_only=high_risk_only,
        after=after,
        limit=limit,
    )
