"""Keeps each process's :class:`PolicyIndex` in step with the database.

Every change that affects checks bumps ``policy_version`` and writes a
``policy_change`` row in the same transaction (:func:`record_change`). Each
process polls the changes after the version it has seen, at most every
``index_refresh_seconds`` (a primary-key range scan that usually returns
nothing), and reloads only the subjects that changed (the whole model when
roles changed). Changes committed by this process mark the index stale, so
the next check in this process sees them at once. Bound for other processes:
``index_refresh_seconds``; add the callers' cache (``permission_cache_seconds``
of the kit's client) for the bound everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from prometheus_client import Counter, Gauge
from sqlalchemy import Table, bindparam, event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from kit.clock import SYSTEM_CLOCK, Clock
from kit.permissions import Decision
from services.permissions.checks.index import CheckResult, GrantView, Model, PolicyIndex
from services.permissions.models import (
    Approval,
    ApprovalState,
    Grant,
    Permission,
    PolicyChange,
    PolicyVersion,
    Role,
    RolePermission,
    SubjectState,
    Suspension,
)

logger = logging.getLogger("permissions.index")

CHECKS = Counter("permission_checks_total", "Permission checks answered, by decision.", ["decision"])
_ALLOWED, _DENIED = CHECKS.labels("allow"), CHECKS.labels("deny")
INDEX_VERSION = Gauge("permission_index_version", "Policy version this process's index has seen.")
INDEX_SUBJECTS = Gauge("permission_index_subjects", "Subjects with live grants in this process's index.")

#: More changed subjects than this in one poll and a full reload is cheaper.
FULL_RELOAD_SUBJECTS = 2_000


class ChangeKind:
    subject = "subject"
    model = "model"


async def record_change(
    session: AsyncSession, kind: str, subject: str | None = None, store: PolicyStore | None = None
) -> int:
    """Bump the policy version in the caller's transaction; returns the new version."""
    version = (
        await session.execute(
            update(PolicyVersion)
            .where(PolicyVersion.id == 1)
            .values(version=PolicyVersion.version + 1)
            .returning(PolicyVersion.version)
        )
    ).scalar_one()
    await session.execute(insert(PolicyChange).values(version=version, kind=kind, subject=subject))
    if store is not None and not session.info.get("policy_listener"):
        session.info["policy_listener"] = True

        def committed(_session: Session) -> None:
            store.mark_stale()

        event.listen(session.sync_session, "after_commit", committed)
    return int(version)


async def lock_policy(session: AsyncSession) -> None:
    """Take the policy counter's row lock now, for the rest of the transaction.

    A transaction that will both change the policy and append to the audit
    chain takes this lock *before* its first audit append, so every such
    transaction takes the two locks in the same order (no deadlock), and
    decisions that read the grants (SoD, duplicates) are serialised with the
    changes that write them.
    """
    await session.execute(select(PolicyVersion.version).where(PolicyVersion.id == 1).with_for_update())


async def load_model(session: AsyncSession) -> Model:
    permissions = {row.name: row.high_risk for row in (await session.execute(select(Permission))).scalars()}
    roles = list((await session.execute(select(Role))).scalars())
    names = {role.id: role.name for role in roles}
    role_rows = [(r.name, names.get(r.parent_id) if r.parent_id else None, r.high_risk) for r in roles]
    links = [
        (names[rp.role_id], rp.permission, rp.effect)
        for rp in (await session.execute(select(RolePermission))).scalars()
    ]
    return Model.build(permissions, role_rows, links)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


async def load_subjects(session: AsyncSession, index: PolicyIndex, subjects: Iterable[str] | None) -> None:
    """Load grants, status and suspensions of ``subjects`` (None: everyone) into ``index``."""
    chosen = None if subjects is None else sorted(set(subjects))
    grant_query = (
        select(Grant.subject, Grant.id, Role.name, Grant.scope, Grant.expires_at)
        .join(Role, Role.id == Grant.role_id)
        .where(Grant.revoked_at.is_(None))
    )
    status_query = select(SubjectState.subject, SubjectState.status).where(SubjectState.status != "active")
    suspension_query = select(Suspension.subject).where(Suspension.lifted_at.is_(None))
    if chosen is not None:
        grant_query = grant_query.where(Grant.subject.in_(chosen))
        status_query = status_query.where(SubjectState.subject.in_(chosen))
        suspension_query = suspension_query.where(Suspension.subject.in_(chosen))
    grants: dict[str, list[GrantView]] = {}
    for subject, grant_id, role, scope, expires_at in (await session.execute(grant_query)).tuples():
        grants.setdefault(subject, []).append(GrantView(str(grant_id), role, scope, _ts(expires_at)))
    statuses = dict((await session.execute(status_query)).tuples().all())
    suspended = set((await session.execute(suspension_query)).scalars())
    if chosen is None:
        index.grants = {subject: tuple(views) for subject, views in grants.items()}
        index.status = statuses
        index.suspended = suspended
        return
    for subject in chosen:
        index.replace_subject(subject, tuple(grants.get(subject, ())), statuses.get(subject), subject in suspended)


def _settle() -> None:
    """Move the index loaded at start-up out of the garbage collector's way.

    A full index is hundreds of thousands of long-lived objects; left in the
    tracked generations they make every full collection walk them, a cost
    requests pay now and then (measured: ~0.5 vs ~0.7 ms of CPU per HTTP check
    at 100,000 grants). Done once, at start-up, when little else is alive:
    frozen objects are still freed by reference counting when a later reload
    drops them (the index holds no cycles), but frozen cyclic garbage would not be.
    """
    gc.collect()
    gc.freeze()


class PolicyStore:
    """One per process: the index, its refresh and the batched write-back of grant use."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, refresh_seconds: float = 0.5) -> None:
        self.sessionmaker = sessionmaker
        self.refresh_seconds = refresh_seconds
        self.index: PolicyIndex | None = None
        self.version = -1
        self._lock = asyncio.Lock()
        #: Bumped by every local commit that changed the policy; a refresh that
        #: started after the last bump is the only proof of freshness.
        self._marks = 0
        self._synced_marks = -1
        self._checked_at = float("-inf")
        #: Decides whether a grant has expired (tests move it instead of sleeping).
        self.clock: Clock = SYSTEM_CLOCK

    def mark_stale(self) -> None:
        self._marks += 1

    async def ensure_fresh(self) -> PolicyIndex:
        index = self.index
        if (
            index is not None
            and self._synced_marks == self._marks
            and time.monotonic() - self._checked_at < self.refresh_seconds
        ):
            return index
        asked = time.monotonic()
        async with self._lock:
            # Another caller may have completed a refresh that started after we asked.
            if self.index is None or self._synced_marks != self._marks or self._checked_at < asked:
                await self._refresh()
        assert self.index is not None
        return self.index

    async def _refresh(self) -> None:
        marks, started = self._marks, time.monotonic()
        await self._load_changes()
        self._synced_marks, self._checked_at = marks, started
        INDEX_VERSION.set(self.version)
        if self.index is not None:
            INDEX_SUBJECTS.set(len(self.index.grants))

    async def _load_changes(self) -> None:
        async with self.sessionmaker() as session:
            if self.index is None:
                version = (await session.execute(select(PolicyVersion.version))).scalar_one()
                index = PolicyIndex(model=await load_model(session))
                await load_subjects(session, index, None)
                self.index, self.version = index, int(version)
                _settle()
                return
            rows = (
                await session.execute(
                    select(PolicyChange.version, PolicyChange.kind, PolicyChange.subject)
                    .where(PolicyChange.version > self.version)
                    .order_by(PolicyChange.version)
                )
            ).all()
            if not rows:
                return
            subjects = {row.subject for row in rows if row.subject is not None}
            if any(row.kind == ChangeKind.model for row in rows) or len(subjects) > FULL_RELOAD_SUBJECTS:
                index = PolicyIndex(model=await load_model(session), used=self.index.used)
                await load_subjects(session, index, None)
                self.index = index
            else:
                await load_subjects(session, self.index, subjects)
            self.version = int(rows[-1].version)

    async def check(self, subject: str, permission: str, scope: str | None = None) -> CheckResult:
        index = await self.ensure_fresh()
        result = index.check(subject, permission, scope, self.clock.time())
        (_ALLOWED if result.allowed else _DENIED).inc()
        return result

    async def holds_role(self, subject: str, role: str) -> bool:
        index = await self.ensure_fresh()
        return index.holds_role(subject, role, self.clock.time())

    async def flush_usage(self) -> int:
        """Write the last-use times recorded by checks (for the unused-grant report)."""
        if self.index is None or not self.index.used:
            return 0
        used, self.index.used = self.index.used, {}
        rows = [{"gid": gid, "ts": datetime.fromtimestamp(ts, UTC)} for gid, ts in used.items()]
        table = cast(Table, Grant.__table__)
        statement = (
            update(table)
            .where(table.c.id == bindparam("gid", type_=table.c.id.type))
            .values(last_used_at=func.greatest(func.coalesce(table.c.last_used_at, bindparam("ts")), bindparam("ts")))
        )
        async with self.sessionmaker() as session:
            await session.execute(statement, rows)
            await session.commit()
        return len(rows)

    async def expire_due_approvals(self) -> int:
        """Persist the ``expired`` state of approvals past their expiry (reads derive it anyway)."""
        async with self.sessionmaker() as session:
            result = await session.execute(
                update(Approval)
                .where(
                    Approval.state.in_([ApprovalState.pending, ApprovalState.approved]),
                    Approval.expires_at <= func.now(),
                )
                .values(state=ApprovalState.expired)
            )
            await session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    async def run(self, usage_flush_seconds: float) -> None:
        """Background upkeep: keep the index fresh, write grant use, expire approvals."""
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(max(self.refresh_seconds, 0.1))
            try:
                await self.ensure_fresh()
                if time.monotonic() - last_flush >= usage_flush_seconds:
                    last_flush = time.monotonic()
                    await self.flush_usage()
                    await self.expire_due_approvals()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("policy index upkeep failed")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush_usage()


class LocalChecker:
    """``kit.permissions.PermissionChecker`` answered from this process's index.

    The permissions service's own routes use ``RequirePermission`` like every
    other service, without calling itself over HTTP.
    """

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        result = await self.store.check(subject, permission, scope)
        return Decision(result.allowed, result.reason, result.grant_id, result.role)


async def get_store(request: Request) -> PolicyStore:
    store: PolicyStore = request.app.state.policy_store
    return store


Store = Annotated[PolicyStore, Depends(get_store)]


def result_body(result: CheckResult) -> dict[str, Any]:
    return {"allowed": result.allowed, "reason": result.reason, "grant_id": result.grant_id, "role": result.role}
