"""Who may read what: the access policy of personal-data reads.

Staff (``staff/`` routes, permission names as seeded by the permissions service):

- masked reads and blind-index lookups need ``vault:read``;
- unmasked reads also need ``vault:decrypt`` and a second factor (``acr`` aal2+);
  authentication data is never shown to staff unmasked;
- an unmasked read that is *bulk* (more than ``bulk_read_threshold`` records)
  or *sensitive* (transaction data, or a field type in
  ``approval_field_types``) also needs an approved maker-checker request,
  consumed exactly once with the permissions service.

Services (``internal/`` routes) are allowed by client id in settings:
``service_readers`` (masked), ``service_decrypters`` (unmasked),
``service_writers``, ``service_shredders``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from kit.auth import InsufficientAssurance, Principal, SubjectKind, acr_at_least
from kit.db import own_transaction
from kit.permissions import PermissionDenied, payload_hash
from services.vault.catalogue import CLASS_POLICIES, FIELD_TYPES
from services.vault.config import VaultSettings
from services.vault.errors import ApprovalRequired, NotAllowed
from services.vault.models import audit_log
from services.vault.state import PermissionGate

#: Operation name of an approval for an unmasked read (``POST /v1/permissions/staff/approvals``).
UNMASKED_READ_OPERATION = "vault.unmasked_read"
#: Operation of the approval a masked read past the reader's quota needs.
OVER_QUOTA_OPERATION = "vault.over_quota_read"
#: Operation of the approval a staff crypto-shredding needs (maker-checker, executed by the vault).
SHRED_OPERATION = "vault.shred"
PERM_READ = "vault:read"
PERM_DECRYPT = "vault:decrypt"
PERM_WRITE = "account:modify"
PERM_SHRED = "account:close"
PERM_KEYS = "vault:key_rotate"
PERM_AUDIT = "audit:read"
PERM_VERIFY = "audit:verify"
UNMASKED_MIN_ACR = "aal2"


@dataclass(frozen=True, slots=True)
class ReadIntent:
    """What a read asks for; the ids of records and subjects, never values."""

    record_ids: Sequence[uuid.UUID]
    subject_ids: Sequence[uuid.UUID]
    fields: Sequence[str]
    purpose: str
    reference: str | None
    unmasked: bool
    approval_id: str | None = None

    def detail(self) -> dict[str, Any]:
        return {
            "records": [str(r) for r in self.record_ids],
            "subjects": sorted({str(s) for s in self.subject_ids}),
            "fields": sorted(self.fields),
            "purpose": self.purpose,
            "reference": self.reference,
            "unmasked": self.unmasked,
        }


@dataclass(slots=True)
class Authorization:
    grant_id: str | None = None
    role: str | None = None
    approval_id: str | None = None
    approved_by: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.grant_id:
            found["grant_id"] = self.grant_id
        if self.approval_id:
            found["approval_id"] = self.approval_id
            found["approved_by"] = self.approved_by
        return found


def approval_payload(reader: str, intent: ReadIntent) -> dict[str, Any]:
    """What an unmasked-read approval is bound to (its payload hash is checked when it executes)."""
    return {
        "reader": reader,
        "records": sorted(str(r) for r in intent.record_ids),
        "fields": sorted(intent.fields),
        "purpose": intent.purpose,
    }


def approval_reasons(intent: ReadIntent, settings: VaultSettings) -> list[str]:
    reasons: list[str] = []
    if len(intent.record_ids) > settings.bulk_read_threshold:
        reasons.append(f"bulk read of more than {settings.bulk_read_threshold} records")
    for name in sorted(intent.fields):
        spec = FIELD_TYPES[name]
        if CLASS_POLICIES[spec.data_class].approval_required:
            reasons.append(f"{name} is {spec.data_class.value} data")
        elif name in settings.approval_field_types:
            reasons.append(f"{name} is a sensitive field")
    return reasons


async def _consume_approval(
    gate: PermissionGate, intent: ReadIntent, operation: str, payload: dict[str, Any], reasons: list[str]
) -> Authorization:
    if intent.approval_id is None:
        raise ApprovalRequired(
            "this read needs an approved request: " + "; ".join(reasons),
            operation=operation,
            payload=payload,
            payload_hash=payload_hash(payload),
            reasons=reasons,
        )
    outcome = await gate.execute_approval(intent.approval_id, operation, payload)
    return Authorization(approval_id=intent.approval_id, approved_by=[str(a) for a in outcome.get("approved_by", [])])


async def authorize_staff_read(
    principal: Principal,
    intent: ReadIntent,
    gate: PermissionGate,
    settings: VaultSettings,
    over_quota: str | None = None,
) -> Authorization:
    """Masked reads were admitted by the route's ``vault:read``; this decides unmasked ones and reads past
    the reader's quota (``over_quota`` names why), which need an approved request."""
    if not intent.unmasked:
        if over_quota is None:
            return Authorization()
        return await _consume_approval(
            gate, intent, OVER_QUOTA_OPERATION, approval_payload(principal.subject, intent), [over_quota]
        )
    hidden = [n for n in intent.fields if not CLASS_POLICIES[FIELD_TYPES[n].data_class].staff_unmasked]
    if hidden:
        raise NotAllowed(f"{', '.join(sorted(hidden))} is never shown to staff unmasked", fields=sorted(hidden))
    if not acr_at_least(principal.acr, UNMASKED_MIN_ACR):
        raise InsufficientAssurance(f"unmasked reads need assurance {UNMASKED_MIN_ACR}", required_acr=UNMASKED_MIN_ACR)
    decision = await gate.check(principal.subject, PERM_DECRYPT)
    if not decision.allowed:
        raise PermissionDenied(decision.reason, permission=PERM_DECRYPT)
    result = Authorization(grant_id=decision.grant_id, role=decision.role)
    reasons = approval_reasons(intent, settings) + ([over_quota] if over_quota else [])
    if reasons:
        payload = approval_payload(principal.subject, intent)
        approved = await _consume_approval(gate, intent, UNMASKED_READ_OPERATION, payload, reasons)
        result.approval_id = approved.approval_id
        result.approved_by = approved.approved_by
    return result


def authorize_service(principal: Principal, allowed: Sequence[str], what: str) -> None:
    if principal.kind is not SubjectKind.service or principal.subject not in allowed:
        raise NotAllowed(f"service {principal.subject} may not {what}")


async def audit_outside(
    request: Request,
    principal: Principal,
    *,
    action: str,
    outcome: str,
    detail: dict[str, Any],
    target: str | None = None,
) -> None:
    """Record a refused or failed access in its own transaction (the request's will roll back)."""
    async with own_transaction(request) as session:
        await audit_log.append(
            session,
            actor=principal.subject,
            actor_kind=principal.kind.value,
            action=action,
            target=target,
            outcome=outcome,
            detail=detail,
        )
