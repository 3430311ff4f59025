"""Stand-ins for the permissions service in identity's service-level tests (flow tests use the real one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kit.permissions import ApprovalRefused, Decision, payload_hash


@dataclass
class FakePermissions:
    """Stands in for the permissions service in service-level tests (flow tests use the real one)."""

    granted: dict[str, set[str]] = field(default_factory=dict)
    #: approval id -> (operation, payload hash) approved and not yet executed
    approved: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        allowed = permission in self.granted.get(subject, set())
        return Decision(allowed, "granted" if allowed else "no grant")

    def grant(self, subject: str, *permissions: str) -> None:
        self.granted.setdefault(subject, set()).update(permissions)

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        expected = self.approved.pop(approval_id, None)
        if expected is None:
            raise ApprovalRefused("not approved", approval_code="approval_not_approved")
        if expected != (operation, payload_hash(payload)):
            raise ApprovalRefused("payload mismatch", approval_code="approval_payload_mismatch")
        return {"executed": True, "approved_by": ["checker"]}
