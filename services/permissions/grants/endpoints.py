"""Roles, the permission catalog, grant requests, grants and segregation-of-duties rules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from kit.auth import Principal, StaffUser
from kit.db import DBSession
from kit.errors import BadRequest, SuiteError
from kit.permissions import RequirePermission
from services.permissions.approvals.schemas import ApprovalOut
from services.permissions.checks.store import Store
from services.permissions.deps import Settings, StepUp, audit_refusal
from services.permissions.grants import repository, service
from services.permissions.grants.schemas import (
    GrantOut,
    GrantRequestBody,
    PermissionOut,
    RevokeBody,
    RoleChangeBody,
    RoleOut,
    SodRuleBody,
    SodRuleOut,
)

staff = APIRouter(prefix="/staff", tags=["grants"])
me = APIRouter(prefix="/me", tags=["grants"])


@staff.get("/roles", response_model=list[RoleOut], summary="Roles with their effective permissions")
async def roles(session: DBSession, store: Store, principal: StaffUser) -> list[RoleOut]:
    """Each role with what it inherits and the permissions it allows or excludes, inheritance applied."""
    index = await store.ensure_fresh()
    descriptions = await repository.role_descriptions(session)
    out = []
    for view in sorted(index.model.roles.values(), key=lambda v: (len(v.lineage), v.name)):
        out.append(
            RoleOut(
                name=view.name,
                description=descriptions.get(view.name, ""),
                parent=view.lineage[1] if len(view.lineage) > 1 else None,
                high_risk=view.high_risk,
                inherits=list(view.lineage[1:]),
                allows=sorted(view.allows),
                denies=sorted(view.denies),
            )
        )
    return out


@staff.get("/permissions", response_model=list[PermissionOut], summary="The permission catalog")
async def permissions(session: DBSession, principal: StaffUser) -> list[PermissionOut]:
    """Resource types and actions; high-risk ones are denied to frozen or suspended staff."""
    return [
        PermissionOut(
            name=p.name,
            resource_type=p.resource_type,
            action=p.action,
            description=p.description,
            high_risk=p.high_risk,
        )
        for p in await repository.permission_catalog(session)
    ]


@staff.post(
    "/grant-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalOut,
    summary="Request a role for a staff member",
    responses={409: {"description": "sod_conflict, training_required, already_granted or subject_closed"}},
    dependencies=[StepUp],
)
async def request_grant(
    body: GrantRequestBody,
    request: Request,
    *,
    session: DBSession,
    settings: Settings,
    store: Store,
    principal: StaffUser,
) -> ApprovalOut:
    """Anyone may ask for a role for themselves; asking for someone else needs `grant:request`.
    The request is refused at once if it would break segregation of duties, if the role is high-risk
    and the subject has no current training, or if the subject already holds it. It becomes an
    approval of operation `role.grant`: a holder of `grant:approve` other than the requester and the
    subject approves it, and the grant is applied in the same step."""
    try:
        approval = await service.request_grant(
            session,
            settings,
            store,
            requester=principal.subject,
            subject=str(body.subject),
            role_name=body.role,
            scope=body.scope,
            expires_at=body.expires_at,
            justification=body.justification,
        )
    except SuiteError as exc:
        await audit_refusal(
            request,
            session,
            actor=principal.subject,
            actor_kind="staff",
            action="grant.request",
            target=str(body.subject),
            error=exc,
        )
        raise
    return ApprovalOut.of(approval, approval.state)


@staff.post(
    "/role-changes",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalOut,
    summary="Propose a custom role or a change to one",
    dependencies=[StepUp],
)
async def request_role_change(
    body: RoleChangeBody, session: DBSession, settings: Settings, store: Store, principal: StaffUser
) -> ApprovalOut:
    """Needs `role:modify`; becomes an approval of `role.change` that another holder of `role:modify`
    approves, and the role is written when approved (every process reloads its model). Shipped roles
    change only through migrations."""
    approval = await service.request_role_change(
        session,
        settings,
        store,
        requester=principal.subject,
        payload=body.model_dump(exclude={"justification"}),
        justification=body.justification,
    )
    return ApprovalOut.of(approval, approval.state)


@staff.get("/grants", response_model=list[GrantOut], summary="Grants, of everyone or one subject")
async def grants(
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("permission:read"))],
    subject: Annotated[uuid.UUID | None, Query()] = None,
    include_inactive: bool = False,
) -> list[GrantOut]:
    """Live grants by default; `include_inactive=true` adds revoked and expired ones (at most 1000)."""
    rows = await service.list_grants(session, str(subject) if subject else None, include_inactive)
    return [GrantOut.of(g, role) for g, role in rows]


@staff.post("/grants/{grant_id}/revoke", response_model=GrantOut, summary="Revoke a grant now", dependencies=[StepUp])
async def revoke(
    grant_id: uuid.UUID,
    body: RevokeBody,
    session: DBSession,
    store: Store,
    principal: Annotated[Principal, Depends(RequirePermission("grant:revoke"))],
) -> GrantOut:
    """Taking a privilege away needs no second person; it is effective in this process at once and
    everywhere within the stated bound."""
    grant = await service.revoke_grant(session, store, grant_id, actor=principal.subject, reason=body.reason)
    return GrantOut.of(grant, await repository.role_name_of(session, grant.role_id))


@staff.get("/sod-rules", response_model=list[SodRuleOut], summary="Mutually exclusive role pairs")
async def sod_rules(session: DBSession, principal: StaffUser) -> list[SodRuleOut]:
    """Pairs nobody may hold together (roles inheriting either side count too)."""
    rules = await repository.sod_rules(session)
    return [SodRuleOut(id=r.id, role_a=na, role_b=nb, reason=r.reason) for r, na, nb in rules]


@staff.post(
    "/sod-rules",
    status_code=status.HTTP_201_CREATED,
    response_model=SodRuleOut,
    summary="Add an SoD rule",
    dependencies=[StepUp],
)
async def add_sod_rule(
    body: SodRuleBody,
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("role:modify"))],
) -> SodRuleOut:
    """Applies to new grants at once; pairs that already coexist show in the over-privilege report."""
    if body.role_a == body.role_b:
        raise BadRequest("an SoD rule needs two different roles")
    rule = await service.add_sod_rule(
        session, actor=principal.subject, role_a=body.role_a, role_b=body.role_b, reason=body.reason
    )
    return SodRuleOut(id=rule.id, role_a=body.role_a, role_b=body.role_b, reason=rule.reason)


@me.get("/grants", response_model=list[GrantOut], summary="My live grants")
async def my_grants(session: DBSession, principal: StaffUser) -> list[GrantOut]:
    """The caller's own roles in force now."""
    return [GrantOut.of(g, role) for g, role in await service.live_grants(session, principal.subject)]
