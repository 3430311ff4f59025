"""Client side of the permissions service: checks, the route dependency, approvals.

``RequirePermission("vault:decrypt")`` asks permissions whether the calling
staff member holds the permission. Decisions are cached for
``permission_cache_seconds`` (default 3 s), which bounds how long a
revocation or suspension can take to reach every service. Failures to reach
permissions deny (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from kit.auth import Principal, StaffUser
from kit.errors import Conflict, Forbidden
from kit.http import ServiceClient

CHECK_PATH = "/v1/permissions/internal/checks"
EXECUTE_PATH = "/v1/permissions/internal/approvals/{approval_id}/execute"


def payload_hash(payload: Any) -> str:
    """Hex SHA-256 of the payload as canonical JSON: what an approval is bound to."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    grant_id: str | None = None
    role: str | None = None


class PermissionDenied(Forbidden):
    code = "permission_denied"
    title = "Permission denied"


class ApprovalRefused(Conflict):
    code = "approval_refused"
    title = "The approval cannot be executed"


class PermissionChecker(Protocol):
    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision: ...


class PermissionClient:
    """Asks the permissions service, caching each decision briefly."""

    def __init__(self, client: ServiceClient, *, cache_seconds: float = 3.0, max_entries: int = 10_000) -> None:
        self._client = client
        self._ttl = cache_seconds
        self._max = max_entries
        self._cache: dict[tuple[str, str, str | None], tuple[float, Decision]] = {}

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        key = (subject, permission, scope)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await self._client.request(
                "POST", CHECK_PATH, json={"subject": subject, "permission": permission, "scope": scope}
            )
        except Exception:  # unreachable permissions: deny, never allow by default
            return Decision(False, "permissions service unavailable (fail closed)")
        if response.status_code != 200:
            return Decision(False, f"permissions service answered {response.status_code} (fail closed)")
        body = response.json()
        decision = Decision(
            allowed=bool(body.get("allowed")),
            reason=str(body.get("reason", "")),
            grant_id=body.get("grant_id"),
            role=body.get("role"),
        )
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, decision)
        return decision

    def forget(self, subject: str | None = None) -> None:
        """Drop cached decisions (all, or one subject's)."""
        if subject is None:
            self._cache.clear()
        else:
            for key in [k for k in self._cache if k[0] == subject]:
                del self._cache[key]

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        """Consume an approval exactly once; raises ApprovalRefused with the service's reason."""
        response = await self._client.request(
            "POST",
            EXECUTE_PATH.format(approval_id=approval_id),
            json={"operation": operation, "payload_hash": payload_hash(payload)},
        )
        if response.status_code == 200:
            result: dict[str, Any] = response.json()
            return result
        reason = "approval could not be verified"
        code = "approval_refused"
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            problem = response.json()
            reason = str(problem.get("detail") or reason)
            code = str(problem.get("code") or code)
        raise ApprovalRefused(reason, approval_code=code)


async def permission_checker(request: Request) -> PermissionChecker:
    # async on purpose: FastAPI runs a plain-function dependency in a worker thread.
    checker: PermissionChecker = request.app.state.permission_client
    return checker


class RequirePermission:
    """Route dependency: the calling staff member must hold ``permission``."""

    def __init__(self, permission: str, *, scope: str | None = None) -> None:
        self.permission = permission
        self.scope = scope

    async def __call__(
        self, principal: StaffUser, checker: Annotated[PermissionChecker, Depends(permission_checker)]
    ) -> Principal:
        decision = await checker.check(principal.subject, self.permission, self.scope)
        if not decision.allowed:
            raise PermissionDenied(decision.reason, permission=self.permission)
        return principal
