"""The check API: allow or deny with the reason, one at a time or in batches."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Response

from kit.auth import ServiceCaller, StaffUser
from kit.errors import BadRequest
from services.permissions.checks.index import CheckResult
from services.permissions.checks.schemas import BatchCheckRequest, BatchCheckResponse, CheckRequest, CheckResponse
from services.permissions.checks.store import Store
from services.permissions.deps import Settings
from services.permissions.errors import NotEntitled

internal = APIRouter(prefix="/internal/checks", tags=["checks"])
staff = APIRouter(prefix="/staff/checks", tags=["checks"])


def _out(result: CheckResult) -> CheckResponse:
    return CheckResponse(allowed=result.allowed, reason=result.reason, grant_id=result.grant_id, role=result.role)


def _json(result: CheckResult) -> dict[str, Any]:
    return {"allowed": result.allowed, "reason": result.reason, "grant_id": result.grant_id, "role": result.role}


@internal.post("", response_model=CheckResponse, summary="May this staff member do this?")
async def check(body: CheckRequest, store: Store, caller: ServiceCaller) -> Response:
    """Answered from this process's in-memory index (no database round trip): the grant and role
    that allowed it, or why nothing did. Expired grants stop counting at their expiry instant;
    frozen or suspended subjects are denied every high-risk permission."""
    # Serialised directly: this is the suite's hottest endpoint and the shape is fixed (CheckResponse).
    result = await store.check(body.subject, body.permission, body.scope)
    return Response(json.dumps(_json(result)), media_type="application/json")


@internal.post("/batch", response_model=BatchCheckResponse, summary="Many checks in one call")
async def check_batch(body: BatchCheckRequest, store: Store, settings: Settings, caller: ServiceCaller) -> Response:
    """Results in the order of the checks, all against the same snapshot of the index."""
    if len(body.checks) > settings.batch_check_limit:
        raise BadRequest(f"at most {settings.batch_check_limit} checks per batch")
    index = await store.ensure_fresh()
    now = time.time()
    results = [_json(index.check(c.subject, c.permission, c.scope, now)) for c in body.checks]
    return Response(json.dumps({"results": results}), media_type="application/json")


@staff.post("", response_model=CheckResponse, summary="Explain a decision (for staff tools and auditors)")
async def explain(
    body: CheckRequest,
    store: Store,
    principal: StaffUser,
) -> CheckResponse:
    """A staff member may explain their own decisions; explaining another's needs `permission:read`."""
    if body.subject != principal.subject:
        reader = await store.check(principal.subject, "permission:read")
        if not reader.allowed:
            raise NotEntitled(f"explaining another person's access needs permission:read: {reader.reason}")
    return _out(await store.check(body.subject, body.permission, body.scope))
