"""What the sampling jobs read from other services, through the gateway with incidents' service token.

- risk ``GET /v1/risk/internal/decisions`` (scope ``risk:read``; contract in docs/contracts.md),
- permissions ``GET /v1/permissions/internal/approvals/{id}`` (any service) and
  ``GET /v1/permissions/internal/audit-samples/grants`` (scope ``audit:sample``),
- vault ``GET /v1/vault/internal/audit-samples/unmasked-reads`` (scope ``audit:sample``).

Any answer other than the expected one stops the job (:class:`SourceUnavailable`):
a sampling audit never reports "no exceptions" over data it could not read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from kit.http import ServiceClient
from services.incidents.governance.errors import SourceUnavailable

DECISIONS = "/v1/risk/internal/decisions"
APPROVAL = "/v1/permissions/internal/approvals/{approval_id}"
GRANTS = "/v1/permissions/internal/audit-samples/grants"
READS = "/v1/vault/internal/audit-samples/unmasked-reads"


async def _get(client: ServiceClient, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    response = await client.request("GET", path, params=params)
    if response.status_code != 200:
        raise SourceUnavailable(f"{path.split('/')[2]} answered {response.status_code}", source=path.split("/")[2])
    body: dict[str, Any] = response.json()
    return body


async def large_transfers(
    client: ServiceClient, *, threshold_minor: int, since: datetime, until: datetime, max_pages: int
) -> AsyncIterator[dict[str, Any]]:
    cursor: str | None = None
    for _ in range(max_pages):
        params = {
            "kind": "transfer",
            "min_amount_minor": str(threshold_minor),
            "occurred_from": since.isoformat(),
            "occurred_to": until.isoformat(),
        }
        if cursor:
            params["after"] = cursor
        page = await _get(client, DECISIONS, params)
        for decision in page.get("decisions", []):
            yield decision
        cursor = page.get("cursor")
        if not cursor:
            return
    raise SourceUnavailable("risk has more decisions than the job reads (sampling_page_limit)", source="risk")


async def approval(client: ServiceClient, approval_id: str) -> dict[str, Any] | None:
    """The approval, or None when permissions does not know it."""
    response = await client.request("GET", APPROVAL.format(approval_id=approval_id))
    if response.status_code in (404, 422):
        return None
    if response.status_code != 200:
        raise SourceUnavailable(f"permissions answered {response.status_code}", source="permissions")
    body: dict[str, Any] = response.json()
    return body


async def high_risk_grants(
    client: ServiceClient, *, since: datetime, until: datetime, max_pages: int
) -> AsyncIterator[dict[str, Any]]:
    cursor: str | None = None
    for _ in range(max_pages):
        params = {"created_from": since.isoformat(), "created_to": until.isoformat(), "high_risk_only": "true"}
        if cursor:
            params["after"] = cursor
        page = await _get(client, GRANTS, params)
        for grant in page.get("grants", []):
            yield grant
        cursor = page.get("cursor")
        if not cursor:
            return
    raise SourceUnavailable(
        "permissions has more grants than the job reads (sampling_page_limit)", source="permissions"
    )


async def unmasked_reads(
    client: ServiceClient, *, since: datetime, until: datetime, max_pages: int
) -> AsyncIterator[dict[str, Any]]:
    after = 0
    for _ in range(max_pages):
        page = await _get(client, READS, {"since": since.isoformat(), "until": until.isoformat(), "after": str(after)})
        for read in page.get("reads", []):
            yield read
        following = page.get("next_after")
        if following is None:
            return
        after = int(following)
    raise SourceUnavailable("vault has more reads than the job reads (sampling_page_limit)", source="vault")
