"""Access reviews (recertification, M4.2) and the over-privilege report (R-III.3.2)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.permissions.approvals.service import now_utc
from services.permissions.checks.store import PolicyStore
from services.permissions.config import PermissionsSettings
from services.permissions.errors import InvalidReview, NotEntitled, ReviewClosed, ReviewNotFound
from services.permissions.grants import repository as grants_repository
from services.permissions.grants.service import conflicts_among, live_grants, revoke_grant, role_graph
from services.permissions.models import Grant, ReviewCampaign, ReviewDecision, ReviewItem, audit_log
from services.permissions.reviews import repository


@dataclass(frozen=True, slots=True)
class Assignment:
    reviewer: str
    subjects: tuple[str, ...]


async def create_campaign(
    session: AsyncSession, *, name: str, due_at: datetime, assignments: list[Assignment], creator: str
) -> tuple[ReviewCampaign, int]:
    """One item per live grant of each assigned subject, reviewed by their manager."""
    if due_at <= now_utc():
        raise InvalidReview("due_at must be in the future")
    seen: set[str] = set()
    for assignment in assignments:
        if assignment.reviewer in assignment.subjects:
            raise InvalidReview("nobody reviews their own access", reviewer=assignment.reviewer)
        overlap = seen.intersection(assignment.subjects)
        if overlap:
            raise InvalidReview("each subject is reviewed by one reviewer in a campaign")
        seen.update(assignment.subjects)
    campaign = ReviewCampaign(id=uuid.uuid4(), name=name, created_by=creator, due_at=due_at)
    session.add(campaign)
    await session.flush()
    reviewer_of = {s: a.reviewer for a in assignments for s in a.subjects}
    count = 0
    for grant, role_name in await live_grants(session):
        reviewer = reviewer_of.get(grant.subject)
        if reviewer is None:
            continue
        session.add(
            ReviewItem(
                campaign_id=campaign.id,
                grant_id=grant.id,
                subject=grant.subject,
                role_name=role_name,
                reviewer=reviewer,
                decision=ReviewDecision.pending,
            )
        )
        count += 1
    await session.flush()
    await audit_log.append(
        session,
        actor=creator,
        action="review.campaign_created",
        target=str(campaign.id),
        detail={"items": count, "reviewers": sorted({a.reviewer for a in assignments})},
    )
    return campaign, count


async def get_campaign(session: AsyncSession, campaign_id: uuid.UUID) -> ReviewCampaign:
    campaign = await repository.campaign(session, campaign_id)
    if campaign is None:
        raise ReviewNotFound(f"review campaign {campaign_id} does not exist")
    return campaign


async def campaign_counts(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, int]:
    counts = {d.value: 0 for d in ReviewDecision}
    counts.update(await repository.decision_counts(session, campaign_id))
    return counts


async def decide_item(
    session: AsyncSession, store: PolicyStore, item_id: uuid.UUID, *, actor: str, decision: ReviewDecision, comment: str
) -> ReviewItem:
    item = await repository.item_for_update(session, item_id)
    if item is None:
        raise ReviewNotFound(f"review item {item_id} does not exist")
    if item.reviewer != actor:
        raise NotEntitled("only the assigned reviewer decides on this item")
    campaign = await get_campaign(session, item.campaign_id)
    if campaign.closed_at is not None or item.decision != ReviewDecision.pending:
        raise ReviewClosed("this item is already decided or its campaign is closed")
    now = now_utc()
    item.decision, item.decided_at, item.comment = decision, now, comment
    if decision == ReviewDecision.revoked:
        await revoke_grant(session, store, item.grant_id, actor=actor, reason=f"access review {campaign.id}")
    else:
        grant = await repository.grant_for_update(session, item.grant_id)
        if grant is not None:
            grant.certified_at, grant.certified_by = now, actor
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        action=f"review.{decision.value}",
        target=item.subject,
        detail={"item_id": str(item.id), "grant_id": str(item.grant_id), "campaign_id": str(campaign.id)},
    )
    return item


async def close_campaign(
    session: AsyncSession, store: PolicyStore, campaign_id: uuid.UUID, *, actor: str, revoke_pending: bool
) -> tuple[ReviewCampaign, int]:
    """Close a campaign; with ``revoke_pending`` every grant nobody certified is revoked (no silent renewal)."""
    campaign = await repository.campaign(session, campaign_id, for_update=True)
    if campaign is None:
        raise ReviewNotFound(f"review campaign {campaign_id} does not exist")
    if campaign.closed_at is not None:
        raise ReviewClosed("the campaign is already closed")
    now = now_utc()
    revoked = 0
    if revoke_pending:
        pending = [
            i for i in await repository.items_of(session, campaign.id, None) if i.decision == ReviewDecision.pending
        ]
        for item in pending:
            await revoke_grant(
                session, store, item.grant_id, actor=actor, reason=f"not certified in review {campaign.id}"
            )
            item.decision, item.decided_at, item.comment = (
                ReviewDecision.revoked,
                now,
                "revoked when the campaign closed",
            )
            revoked += 1
    campaign.closed_at = now
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        action="review.campaign_closed",
        target=str(campaign.id),
        detail={"revoked_pending": revoked},
    )
    return campaign, revoked


async def overdue(session: AsyncSession) -> list[dict[str, Any]]:
    """Open campaigns past their due date with items still pending, per reviewer."""
    rows = await repository.pending_past_due(session, now_utc())
    return [
        {"campaign_id": str(cid), "name": name, "due_at": due.isoformat(), "reviewer": reviewer, "pending": int(n)}
        for cid, name, due, reviewer, n in rows
    ]


@dataclass
class OverPrivilegeReport:
    generated_at: datetime
    unused_grants: list[dict[str, Any]] = field(default_factory=list)
    sod_conflicts: list[dict[str, Any]] = field(default_factory=list)
    grants_without_training: list[dict[str, Any]] = field(default_factory=list)


async def over_privilege(
    session: AsyncSession, settings: PermissionsSettings, store: PolicyStore
) -> OverPrivilegeReport:
    await store.flush_usage()  # this process's recent use counts too
    now = now_utc()
    report = OverPrivilegeReport(generated_at=now)
    cutoff = now - timedelta(days=settings.unused_grant_days)
    grants = await live_grants(session)
    graph = await role_graph(session)
    by_subject: dict[str, list[tuple[Grant, str]]] = defaultdict(list)
    for grant, role_name in grants:
        by_subject[grant.subject].append((grant, role_name))
        last = grant.last_used_at or grant.created_at
        if last < cutoff:
            report.unused_grants.append(
                {
                    "grant_id": str(grant.id),
                    "subject": grant.subject,
                    "role": role_name,
                    "last_used_at": grant.last_used_at.isoformat() if grant.last_used_at else None,
                }
            )
    rules = await grants_repository.sod_rules(session)
    for subject, held in by_subject.items():
        if len(held) < 2:
            continue
        for conflict in conflicts_among(rules, graph, [g.role_id for g, _ in held]):
            report.sod_conflicts.append({"subject": subject, **conflict})
    trained = await repository.subjects_trained(session, settings.training_course, now)
    for grant, role_name in grants:
        role = graph.by_name.get(role_name)
        if role is not None and graph.high_risk(role) and grant.subject not in trained:
            report.grants_without_training.append(
                {"grant_id": str(grant.id), "subject": grant.subject, "role": role_name}
            )
    return report
