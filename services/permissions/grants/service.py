"""Role grants under change control: request, approval by another entitled person, apply.

Every grant is an approval of operation ``role.grant`` whose payload names the
subject, role, scope and expiry. The checks that make a grant acceptable
(segregation of duties, training for high-risk roles, no duplicate, subject
not closed) run when it is requested, to refuse early, and again when it is
applied, because the world may have changed while it waited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.permissions.approvals import service as approvals
from services.permissions.approvals.service import now_utc
from services.permissions.checks.store import ChangeKind, PolicyStore, record_change
from services.permissions.config import PermissionsSettings
from services.permissions.errors import (
    AlreadyGranted,
    GrantNotFound,
    InvalidExpiry,
    InvalidPayload,
    NotEntitled,
    SodConflict,
    SubjectClosed,
    TrainingRequired,
    UnknownRole,
)
from services.permissions.grants import repository
from services.permissions.grants.repository import SodRules
from services.permissions.models import Approval, Grant, Role, SodRule, SubjectStatus, TrainingRecord, audit_log

GRANT_OPERATION = "role.grant"
ROLE_CHANGE_OPERATION = "role.change"


@dataclass(frozen=True, slots=True)
class RoleGraph:
    """Every role with its lineage (itself and the roles it inherits)."""

    by_name: dict[str, Role]
    lineage: dict[uuid.UUID, tuple[uuid.UUID, ...]]
    #: Roles flagged high-risk or allowing a high-risk permission themselves.
    risky: frozenset[uuid.UUID]

    def high_risk(self, role: Role) -> bool:
        """High-risk if it or a role it inherits is flagged or gives a high-risk permission."""
        return any(rid in self.risky for rid in self.lineage[role.id])


async def role_graph(session: AsyncSession) -> RoleGraph:
    roles = await repository.all_roles(session)
    parents = {r.id: r.parent_id for r in roles}
    lineage: dict[uuid.UUID, tuple[uuid.UUID, ...]] = {}
    for role in roles:
        chain = [role.id]
        parent = parents.get(role.id)
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = parents.get(parent)
        lineage[role.id] = tuple(chain)
    risky = {r.id for r in roles if r.high_risk}
    risky.update(await repository.role_ids_allowing_high_risk(session))
    return RoleGraph({r.name: r for r in roles}, lineage, frozenset(risky))


async def role_by_name(session: AsyncSession, name: str) -> Role:
    role = await repository.role_named(session, name)
    if role is None:
        raise UnknownRole(f"no role named {name!r}", role=name)
    return role


async def live_grants(session: AsyncSession, subject: str | None = None) -> list[tuple[Grant, str]]:
    """Grants in force now (not revoked, not expired) with their role names."""
    return await repository.grants_in_force(session, now_utc(), subject)


def conflicts_among(
    rules: SodRules, graph: RoleGraph, role_ids: list[uuid.UUID], new_role: uuid.UUID | None = None
) -> list[dict[str, str]]:
    """The rules violated by holding ``role_ids`` (plus ``new_role``); roles inheriting a side count."""
    held = [set(graph.lineage.get(rid, (rid,))) for rid in role_ids]
    new = set(graph.lineage.get(new_role, (new_role,))) if new_role is not None else None
    found: list[dict[str, str]] = []
    for rule, name_a, name_b in rules:
        if new is not None:
            # The new role against each held role, and against itself (a role inheriting both).
            pairs = [(new, h) for h in held] + [(new, new)]
        else:
            pairs = [(x, y) for i, x in enumerate(held) for y in held[i:]]
        for x, y in pairs:
            if (rule.role_a_id in x and rule.role_b_id in y) or (rule.role_b_id in x and rule.role_a_id in y):
                found.append({"role_a": name_a, "role_b": name_b, "reason": rule.reason})
                break
    return found


async def current_training(session: AsyncSession, settings: PermissionsSettings, subject: str) -> TrainingRecord | None:
    return await repository.latest_training(session, subject, settings.training_course, now_utc())


async def validate_grant(
    session: AsyncSession, settings: PermissionsSettings, subject: str, role: Role, scope: str | None
) -> None:
    """Refuse a grant that would break SoD, lacks training, duplicates, or targets a closed subject."""
    state = await repository.subject_state(session, subject)
    if state is not None and state.status == SubjectStatus.closed:
        raise SubjectClosed("a closed account cannot receive grants")
    held = await live_grants(session, subject)
    if any(g.role_id == role.id and g.scope == scope for g, _ in held):
        raise AlreadyGranted(f"the subject already holds {role.name}" + (f" in scope {scope}" if scope else ""))
    graph = await role_graph(session)
    conflicts = conflicts_among(await repository.sod_rules(session), graph, [g.role_id for g, _ in held], role.id)
    if conflicts:
        first = conflicts[0]
        raise SodConflict(
            f"{first['role_a']} and {first['role_b']} are mutually exclusive: {first['reason']}", conflicts=conflicts
        )
    if graph.high_risk(role) and await current_training(session, settings, subject) is None:
        raise TrainingRequired(
            f"{role.name} is high-risk: the subject needs a current {settings.training_course} record",
            course=settings.training_course,
        )


def _parse_expiry(settings: PermissionsSettings, expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidExpiry("expires_at must carry a time zone")
    now = now_utc()
    if expires_at <= now:
        raise InvalidExpiry("expires_at must be in the future")
    if expires_at > now + timedelta(days=settings.max_grant_days):
        raise InvalidExpiry(f"grants last at most {settings.max_grant_days} days")
    return expires_at


async def request_grant(
    session: AsyncSession,
    settings: PermissionsSettings,
    store: PolicyStore,
    *,
    requester: str,
    subject: str,
    role_name: str,
    scope: str | None,
    expires_at: datetime | None,
    justification: str,
) -> Approval:
    if requester != subject:
        decision = await store.check(requester, "grant:request")
        if not decision.allowed:
            raise NotEntitled(f"requesting a grant for someone else needs grant:request: {decision.reason}")
    role = await role_by_name(session, role_name)
    expiry = _parse_expiry(settings, expires_at)
    await validate_grant(session, settings, subject, role, scope)
    payload: dict[str, Any] = {
        "subject": subject,
        "role": role.name,
        "scope": scope,
        "expires_at": expiry.isoformat() if expiry else None,
    }
    return await approvals.create(
        session,
        settings,
        operation=GRANT_OPERATION,
        payload=payload,
        requested_by=requester,
        comment=justification,
        # Nobody approves their own privileges, even when someone else asked for them.
        excluded_approvers=[subject],
    )


def grant_applier(settings: PermissionsSettings, store: PolicyStore) -> approvals.InternalExecutor:
    async def apply(session: AsyncSession, approval: Approval, approver: str) -> None:
        payload = approval.payload
        try:
            subject = str(payload["subject"])
            role_name = str(payload["role"])
            scope = payload.get("scope")
            raw_expiry = payload.get("expires_at")
            expires_at = datetime.fromisoformat(raw_expiry) if raw_expiry else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidPayload("the grant approval's payload is malformed") from exc
        if expires_at is not None and expires_at <= now_utc():
            raise InvalidExpiry("the requested expiry has passed while the grant waited for approval")
        role = await role_by_name(session, role_name)
        await validate_grant(session, settings, subject, role, scope)
        grant = Grant(
            id=uuid.uuid4(),
            subject=subject,
            role_id=role.id,
            scope=scope,
            requested_by=approval.requested_by,
            approved_by=approver,
            approval_id=approval.id,
            expires_at=expires_at,
        )
        session.add(grant)
        await session.flush()
        await record_change(session, ChangeKind.subject, subject, store)
        await audit_log.append(
            session,
            actor=approver,
            action="grant.applied",
            target=subject,
            detail={
                "grant_id": str(grant.id),
                "role": role.name,
                "scope": scope,
                "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
                "approval_id": str(approval.id),
                "requested_by": approval.requested_by,
            },
        )

    return apply


async def revoke_grant(
    session: AsyncSession, store: PolicyStore, grant_id: uuid.UUID, *, actor: str, reason: str
) -> Grant:
    grant = await repository.grant_for_update(session, grant_id)
    if grant is None:
        raise GrantNotFound(f"grant {grant_id} does not exist")
    if grant.revoked_at is None:
        grant.revoked_at = now_utc()
        grant.revoked_by = actor
        grant.revoke_reason = reason
        await session.flush()
        await record_change(session, ChangeKind.subject, grant.subject, store)
        await audit_log.append(
            session, actor=actor, action="grant.revoked", target=grant.subject, detail={"grant_id": str(grant.id)}
        )
    return grant


async def revoke_all(session: AsyncSession, store: PolicyStore, subject: str, *, actor: str, reason: str) -> int:
    grants = [g for g, _ in await live_grants(session, subject)]
    for grant in grants:
        await revoke_grant(session, store, grant.id, actor=actor, reason=reason)
    return len(grants)


async def list_grants(session: AsyncSession, subject: str | None, include_inactive: bool) -> list[tuple[Grant, str]]:
    if not include_inactive:
        return await live_grants(session, subject)
    return await repository.grants_any_state(session, subject, limit=1000)


async def _validate_role_change(session: AsyncSession, payload: dict[str, Any]) -> Role | None:
    """Check a custom role definition; returns the existing role it replaces, if any."""
    name = payload["name"]
    existing = await repository.role_named(session, name)
    if existing is not None and existing.builtin:
        raise InvalidPayload(f"{name} is a shipped role: it changes through a migration, not at run time")
    known = await repository.permission_names(session)
    unknown = sorted((set(payload["allows"]) | set(payload["denies"])) - known)
    if unknown:
        raise InvalidPayload(f"unknown permission(s): {', '.join(unknown)}")
    if set(payload["allows"]) & set(payload["denies"]):
        raise InvalidPayload("a permission cannot be both allowed and denied by one role")
    parent = payload.get("parent")
    if parent is not None:
        graph = await role_graph(session)
        parent_role = graph.by_name.get(parent)
        if parent_role is None:
            raise UnknownRole(f"no role named {parent!r}", role=parent)
        if existing is not None and existing.id in graph.lineage[parent_role.id]:
            raise InvalidPayload(f"{parent} inherits from {name}: that would be a cycle")
    return existing


async def request_role_change(
    session: AsyncSession,
    settings: PermissionsSettings,
    store: PolicyStore,
    *,
    requester: str,
    payload: dict[str, Any],
    justification: str,
) -> Approval:
    decision = await store.check(requester, "role:modify")
    if not decision.allowed:
        raise NotEntitled(f"changing roles needs role:modify: {decision.reason}")
    await _validate_role_change(session, payload)
    return await approvals.create(
        session,
        settings,
        operation=ROLE_CHANGE_OPERATION,
        payload=payload,
        requested_by=requester,
        comment=justification,
    )


def role_change_applier(store: PolicyStore) -> approvals.InternalExecutor:
    async def apply(session: AsyncSession, approval: Approval, approver: str) -> None:
        payload = approval.payload
        try:
            role = await _validate_role_change(session, payload)
            allows, denies = list(payload["allows"]), list(payload["denies"])
        except (KeyError, TypeError) as exc:
            raise InvalidPayload("the role change's payload is malformed") from exc
        parent = payload.get("parent")
        parent_id = (await role_by_name(session, parent)).id if parent else None
        if role is None:
            role = Role(id=uuid.uuid4(), name=payload["name"], builtin=False)
            session.add(role)
        role.description = payload.get("description", "")
        role.parent_id = parent_id
        role.high_risk = bool(payload.get("high_risk", False))
        await session.flush()
        await repository.replace_role_permissions(session, role.id, allows, denies)
        await record_change(session, ChangeKind.model, None, store)
        await audit_log.append(
            session,
            actor=approver,
            action="role.changed",
            target=role.name,
            detail={
                "approval_id": str(approval.id),
                "requested_by": approval.requested_by,
                "parent": parent,
                "allows": sorted(allows),
                "denies": sorted(denies),
                "high_risk": role.high_risk,
            },
        )

    return apply


async def add_sod_rule(session: AsyncSession, *, actor: str, role_a: str, role_b: str, reason: str) -> SodRule:
    """A new rule on the pair, or the one already there (either order)."""
    first = await role_by_name(session, role_a)
    second = await role_by_name(session, role_b)
    existing = await repository.sod_rule_between(session, first.id, second.id)
    if existing is not None:
        return existing
    rule = SodRule(id=uuid.uuid4(), role_a_id=first.id, role_b_id=second.id, reason=reason, created_by=actor)
    session.add(rule)
    await session.flush()
    await audit_log.append(
        session, actor=actor, action="sod_rule.added", target=str(rule.id), detail={"role_a": role_a, "role_b": role_b}
    )
    return rule
