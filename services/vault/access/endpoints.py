"""The access log: every read, decrypt, lookup and refusal, from the service's audit chain.

Entries are append-only and hash-chained (``kit.audit``); the table refuses
UPDATE, DELETE and TRUNCATE, and the retention is the chain's: nothing
deletes entries, so the >= 5-year requirement is met by keeping the database
(and its backups) that long.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from kit.audit import MAC_FIELD, verify_configured
from kit.auth import Customer, Principal, RequireAcr
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.vault.access.policy import PERM_AUDIT, PERM_VERIFY
from services.vault.access.schemas import AccessEntry, AccessPage, ChainReport, CustomerAccess
from services.vault.models import audit_log
from services.vault.state import VaultDep

staff_router = APIRouter(prefix="/staff/access-log", tags=["access log"], dependencies=[Depends(RequireAcr("aal2"))])
customer_router = APIRouter(prefix="/customer/access-log", tags=["access log"])

Auditor = Annotated[Principal, Depends(RequirePermission(PERM_AUDIT))]
Verifier = Annotated[Principal, Depends(RequirePermission(PERM_VERIFY))]

ACCESS_ACTIONS = (
    "vault.read",
    "vault.decrypt",
    "vault.lookup",
    "vault.integrity_failure",
    "vault.transit.decrypt",
    "vault.transit.rewrap",
    "vault.service_refused",
)


def without_mac(detail: dict[str, Any]) -> dict[str, Any]:
    """An entry's detail as readers see it: the chain's MAC is integrity data, not content."""
    return {k: v for k, v in detail.items() if k != MAC_FIELD}


@staff_router.get("", response_model=AccessPage)
async def query_access_log(
    session: DBSession,
    *,
    auditor: Auditor,
    subject_id: uuid.UUID | None = None,
    actor: str | None = Query(default=None, max_length=200),
    action: str | None = Query(default=None, pattern=r"^vault\.[a-z_.]{1,60}$"),
    outcome: str | None = Query(default=None, pattern=r"^[a-z_]{1,32}$"),
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = Query(default=0, ge=0, le=2**63 - 1, description="Return entries after this sequence number."),
    limit: int = Query(default=100, ge=1, le=500),
    all_actions: bool = Query(default=False, description="Every vault audit entry, not only accesses."),
) -> AccessPage:
    """Who read which customer's data, when, why and which fields (needs `audit:read`).

    Filter by customer (`subject_id`), reader (`actor`), action, outcome
    (`success`, `denied`, `gone`, `failure`) and time; pages by sequence.
    The query itself is audited.
    """
    t = audit_log.entries
    query = select(t).where(t.c.seq > after)
    if not all_actions and action is None:
        query = query.where(t.c.action.in_(ACCESS_ACTIONS))
    if action is not None:
        query = query.where(t.c.action == action)
    if subject_id is not None:
        sid = str(subject_id)
        query = query.where((t.c.target == sid) | t.c.detail["subjects"].contains([sid]))
    if actor is not None:
        query = query.where(t.c.actor == actor)
    if outcome is not None:
        query = query.where(t.c.outcome == outcome)
    if since is not None:
        query = query.where(t.c.occurred_at >= since)
    if until is not None:
        query = query.where(t.c.occurred_at < until)
    rows = (await session.execute(query.order_by(t.c.seq).limit(limit))).all()
    entries = [
        AccessEntry(
            seq=r.seq,
            id=r.id,
            occurred_at=r.occurred_at,
            actor=r.actor,
            actor_kind=r.actor_kind,
            action=r.action,
            target=r.target,
            outcome=r.outcome,
            detail=without_mac(r.detail),
            request_id=r.request_id,
        )
        for r in rows
    ]
    await audit_log.append(
        session,
        actor=auditor.subject,
        action="vault.access_log.query",
        target=str(subject_id) if subject_id else None,
        detail={"actor": actor, "action": action, "returned": len(entries)},
    )
    return AccessPage(entries=entries, next_after=entries[-1].seq if len(entries) == limit else None)


@staff_router.get("/verify", response_model=ChainReport)
async def verify_access_log(session: DBSession, vault: VaultDep, auditor: Verifier) -> ChainReport:
    """Walk the whole chain and its signed checkpoints; report the first entry not as written
    (needs `audit:verify`)."""
    report = await verify_configured(
        audit_log,
        session,
        signing_secret=vault.settings.audit_signing_key.get_secret_value(),
        checkpoint_file=vault.settings.audit_checkpoint_file,
    )
    return ChainReport(
        ok=report.ok,
        entries_checked=report.entries_checked,
        checkpoints_checked=report.checkpoints_checked,
        first_bad_seq=report.first_bad_seq,
        problem=report.problem.value if report.problem else None,
    )


@customer_router.get("", response_model=list[CustomerAccess])
async def my_access_log(
    session: DBSession, customer: Customer, limit: int = Query(default=50, ge=1, le=200)
) -> list[CustomerAccess]:
    """The reads of my own personal data (newest first): when, by staff or a service, why, which fields.

    Individual staff ids are not shown to customers; auditors see them.
    """
    t = audit_log.entries
    rows = (
        await session.execute(
            select(t)
            .where(t.c.action.in_(("vault.read", "vault.decrypt", "vault.lookup")))
            .where((t.c.target == customer.subject) | t.c.detail["subjects"].contains([customer.subject]))
            .order_by(t.c.seq.desc())
            .limit(limit)
        )
    ).all()
    return [
        CustomerAccess(
            occurred_at=r.occurred_at,
            actor_kind=r.actor_kind,
            action=r.action,
            outcome=r.outcome,
            purpose=r.detail.get("purpose"),
            fields=list(r.detail.get("fields", [r.detail.get("field")] if r.detail.get("field") else [])),
        )
        for r in rows
    ]
