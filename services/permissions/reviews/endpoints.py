"""Access-review campaigns and the over-privilege report."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.permissions.approvals.service import now_utc
from services.permissions.checks.store import LocalChecker, Store
from services.permissions.deps import Settings, StepUp
from services.permissions.models import ReviewDecision, audit_log
from services.permissions.reviews import repository, service
from services.permissions.reviews.schemas import (
    CampaignBody,
    CampaignOut,
    ItemDecisionBody,
    ItemOut,
    OverPrivilegeOut,
)

staff = APIRouter(prefix="/staff", tags=["reviews"])

Manager = Annotated[Principal, Depends(RequirePermission("review:manage"))]
Reviewer = Annotated[Principal, Depends(RequirePermission("review:certify"))]


async def _campaign_out(session: DBSession, campaign_id: uuid.UUID) -> CampaignOut:
    campaign = await service.get_campaign(session, campaign_id)
    counts = await service.campaign_counts(session, campaign.id)
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        created_by=campaign.created_by,
        due_at=campaign.due_at,
        counts=counts,
        closed_at=campaign.closed_at,
        overdue=campaign.closed_at is None and campaign.due_at < now_utc() and counts["pending"] > 0,
    )


@staff.post(
    "/reviews",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignOut,
    summary="Start a campaign",
    dependencies=[StepUp],
)
async def create_campaign(body: CampaignBody, session: DBSession, principal: Manager) -> CampaignOut:
    """Every live grant of each assigned subject becomes an item for the subject's reviewer (their
    manager), who certifies or revokes it before `due_at`. Nobody reviews their own access."""
    campaign, _ = await service.create_campaign(
        session,
        name=body.name,
        due_at=body.due_at,
        assignments=[
            service.Assignment(reviewer=str(a.reviewer), subjects=tuple(str(s) for s in a.subjects))
            for a in body.assignments
        ],
        creator=principal.subject,
    )
    return await _campaign_out(session, campaign.id)


@staff.post(
    "/reviews/{campaign_id}/close", response_model=CampaignOut, summary="Close a campaign", dependencies=[StepUp]
)
async def close_campaign(
    campaign_id: uuid.UUID, session: DBSession, store: Store, principal: Manager, revoke_pending: bool = False
) -> CampaignOut:
    """Ends the campaign; `revoke_pending=true` revokes every grant its reviewer did not certify."""
    await service.close_campaign(session, store, campaign_id, actor=principal.subject, revoke_pending=revoke_pending)
    return await _campaign_out(session, campaign_id)


@staff.get("/reviews/overdue", response_model=list[dict[str, Any]], summary="Overdue reviews")
async def overdue(session: DBSession, principal: Manager) -> list[dict[str, Any]]:
    """Campaigns past their due date with items still pending, per reviewer."""
    return await service.overdue(session)


@staff.get("/reviews/{campaign_id}", response_model=CampaignOut, summary="A campaign's progress")
async def campaign(campaign_id: uuid.UUID, session: DBSession, principal: Reviewer) -> CampaignOut:
    """Counts of pending, certified and revoked items and whether it is overdue."""
    return await _campaign_out(session, campaign_id)


@staff.get("/reviews/{campaign_id}/items", response_model=list[ItemOut], summary="Items to review")
async def items(
    campaign_id: uuid.UUID, session: DBSession, store: Store, principal: Reviewer, everyone: bool = False
) -> list[ItemOut]:
    """The caller's own items; `everyone=true` lists all items and needs `review:manage`."""
    reviewer: str | None = principal.subject
    if everyone:
        await RequirePermission("review:manage")(principal, LocalChecker(store))
        reviewer = None
    return [ItemOut.of(i) for i in await repository.items_of(session, campaign_id, reviewer)]


@staff.post(
    "/reviews/items/{item_id}", response_model=ItemOut, summary="Certify or revoke one grant", dependencies=[StepUp]
)
async def decide(
    item_id: uuid.UUID, body: ItemDecisionBody, session: DBSession, store: Store, principal: Reviewer
) -> ItemOut:
    """Only the assigned reviewer decides; `revoked` revokes the grant at once."""
    item = await service.decide_item(
        session,
        store,
        item_id,
        actor=principal.subject,
        decision=ReviewDecision(body.decision),
        comment=body.comment,
    )
    return ItemOut.of(item)


@staff.get("/reports/over-privilege", response_model=OverPrivilegeOut, summary="Over-privilege report")
async def over_privilege(
    session: DBSession,
    settings: Settings,
    store: Store,
    principal: Annotated[Principal, Depends(RequirePermission("audit:read"))],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> OverPrivilegeOut:
    """Unused grants (no allowed check for `unused_grant_days`), coexisting SoD conflicts (e.g. after a
    rule was added) and high-risk grants whose holder has no current training; each list holds at
    most `limit` entries, `counts` the full numbers."""
    report = await service.over_privilege(session, settings, store)
    counts = {
        "unused_grants": len(report.unused_grants),
        "sod_conflicts": len(report.sod_conflicts),
        "grants_without_training": len(report.grants_without_training),
    }
    await audit_log.append(session, actor=principal.subject, action="report.over_privilege", detail=counts)
    return OverPrivilegeOut(
        generated_at=report.generated_at,
        counts=counts,
        unused_grants=report.unused_grants[:limit],
        sod_conflicts=report.sod_conflicts[:limit],
        grants_without_training=report.grants_without_training[:limit],
    )
