"""Staff behaviour (M2.2): abnormal volumes of personal-data reads, approvals at odd hours.

An abnormal pattern opens a behaviour alert, asks permissions to suspend the person's high-risk
permissions (existing suspension route, through the outbox) and reports insider misuse to
incidents; at most once per person per day.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.config import RiskSettings
from services.risk.decisions.service import PERMISSIONS_SUBJECTS, report
from services.risk.models import Alert, StaffEvent, audit_log, outbox
from services.risk.staff import repository
from services.risk.staff.schemas import StaffEventIn, StaffEventKind, StaffEventOut


def odd_hour(settings: RiskSettings, event_hour_utc: int) -> bool:
    hour = (event_hour_utc + settings.staff_timezone_offset_hours) % 24
    start, end = settings.staff_odd_hours
    return start <= hour or hour < end if start > end else start <= hour < end


async def judge(session: AsyncSession, settings: RiskSettings, body: StaffEventIn, *, source: str) -> StaffEventOut:
    staff_id = str(body.staff_id)
    t = body.occurred_at
    await repository.lock_staff(session, staff_id)
    session.add(
        StaffEvent(
            staff_id=staff_id, kind=body.kind.value, count=body.count, occurred_at=t, source=source, detail=body.detail
        )
    )
    await session.flush()
    why: str | None = None
    if body.kind == StaffEventKind.personal_data_read:
        reads = await repository.total(session, staff_id, body.kind.value, t - timedelta(hours=1), t)
        if reads >= settings.staff_read_limit_per_hour:
            why = f"{reads} personal-data reads within an hour"
    elif body.kind == StaffEventKind.approval:
        approvals = await repository.events(session, staff_id, body.kind.value, t - timedelta(days=1), t)
        odd = sum(e.count for e in approvals if odd_hour(settings, e.occurred_at.hour))
        if odd >= settings.staff_odd_hour_approvals:
            why = f"{odd} approvals at odd hours within a day"
    if why is None:
        return StaffEventOut(accepted=True, abnormal=False, suspension_requested=False)
    key = f"risk-suspend:{staff_id}:{t.date().isoformat()}"
    if await repository.already_sent(session, key):
        return StaffEventOut(accepted=True, abnormal=True, suspension_requested=False)
    alert = Alert(
        id=uuid.uuid4(),
        category="behaviour",
        grade=2,
        score=80.0,
        staff_id=staff_id,
        summary=f"staff behaviour: {why}",
        reasons=[{"code": f"staff_{body.kind.value}", "detail": why, "weight": 0.8}],
    )
    session.add(alert)
    await session.flush()
    await outbox.enqueue(
        session,
        target="permissions",
        path=f"{PERMISSIONS_SUBJECTS}/{staff_id}/suspension",
        payload={"reason": f"risk: {why}"},
        idempotency_key=key,
    )
    await report(
        session,
        key=f"risk-staff-report:{staff_id}:{t.date().isoformat()}",
        source="risk_alert",
        type_="insider_misuse",
        level=3,
        correlation_key=f"staff:{staff_id}",
        summary=f"staff behaviour: {why}",
        occurred_at=t,
        staff_id=staff_id,
        reference={"kind": "alert", "id": str(alert.id)},
        observables=[],
    )
    await audit_log.append(
        session,
        actor="risk",
        actor_kind="service",
        action="staff.suspension_requested",
        target=staff_id,
        detail={"why": why, "alert_id": str(alert.id)},
    )
    return StaffEventOut(accepted=True, abnormal=True, suspension_requested=True)
