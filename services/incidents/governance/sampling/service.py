"""Sampling audits as jobs: read a period's items from the services, hold each to its rule, file findings.

Each exception becomes a finding of the audit, keyed by (check, item, rule)
so a re-run over the same period adds nothing twice. The run itself (what
was sampled, how many exceptions) is kept, linked as evidence of the audit
and appended to the audit chain. The job runs from the staff route or the
``sample`` command (a scheduler runs that monthly).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.http import ServiceClient
from services.incidents.config import IncidentsSettings
from services.incidents.governance.audits import repository as audits
from services.incidents.governance.audits.schemas import EvidenceKind, FindingStatus
from services.incidents.governance.audits.service import open_audit
from services.incidents.governance.sampling import repository, rules, sources
from services.incidents.governance.sampling.schemas import Check, SamplingRequest, SamplingRunView
from services.incidents.models import AuditEvidence, SamplingRun, audit_log

SERVICES_READ = {
    Check.large_transfers: "risk, permissions",
    Check.unmasked_reads: "vault",
    Check.high_risk_grants: "permissions",
}
RECOMMENDATIONS = {
    Check.large_transfers: "Refuse large transfers without an executed second-person approval; investigate this one.",
    Check.unmasked_reads: "Require a purpose and the approval on every unmasked read; review the reader's access.",
    Check.high_risk_grants: "Grant high-risk roles only through approvals by a second person, after training.",
}


async def _deviations(
    client: ServiceClient, settings: IncidentsSettings, request: SamplingRequest
) -> tuple[int, list[rules.Deviation]]:
    sampled = 0
    found: list[rules.Deviation] = []
    pages = settings.sampling_page_limit
    since, until = request.period_from, request.period_to
    if request.check is Check.large_transfers:
        approvals: dict[str, dict[str, Any] | None] = {}
        async for decision in sources.large_transfers(
            client,
            threshold_minor=settings.sampling_transfer_threshold_minor,
            since=since,
            until=until,
            max_pages=pages,
        ):
            if decision.get("decision") in rules.NOT_EXECUTED:
                continue
            if int(decision.get("amount_minor") or 0) < settings.sampling_transfer_threshold_minor:
                continue
            sampled += 1
            approval_id = decision.get("approval_id")
            approval = None
            if approval_id:
                key = str(approval_id)
                if key not in approvals:
                    approvals[key] = await sources.approval(client, key)
                approval = approvals[key]
            found += rules.transfer_exceptions(decision, approval)
    elif request.check is Check.unmasked_reads:
        async for read in sources.unmasked_reads(client, since=since, until=until, max_pages=pages):
            sampled += 1
            found += rules.read_exceptions(read)
    else:
        async for grant in sources.high_risk_grants(client, since=since, until=until, max_pages=pages):
            sampled += 1
            found += rules.grant_exceptions(grant)
    return sampled, found


async def run_sampling(
    session: AsyncSession,
    client: ServiceClient,
    settings: IncidentsSettings,
    audit_id: uuid.UUID,
    request: SamplingRequest,
    *,
    actor: str,
    actor_kind: str = "staff",
) -> SamplingRunView:
    audit = await open_audit(session, audit_id)
    sampled, found = await _deviations(client, settings, request)
    run = SamplingRun(
        id=uuid.uuid4(),
        audit_id=audit.id,
        check=request.check.value,
        period_from=request.period_from,
        period_to=request.period_to,
        sampled=sampled,
        exceptions=len(found),
        actor=actor,
    )
    await repository.add(session, run)
    new = 0
    for deviation in found:
        inserted = await audits.add_finding_once(
            session,
            {
                "id": uuid.uuid4(),
                "audit_id": audit.id,
                "title": deviation.title[:200],
                "description": deviation.description,
                "rating": deviation.rating.value,
                "recommendation": RECOMMENDATIONS[request.check],
                "source": f"sampling:{request.check.value}",
                "dedupe_key": f"{request.check.value}:{deviation.item}:{deviation.code}"[:200],
                "detail": {**deviation.detail, "code": deviation.code, "sampling_run": str(run.id)},
                "status": FindingStatus.open.value,
                "created_by": actor,
            },
        )
        new += inserted is not None
    session.add(
        AuditEvidence(
            id=uuid.uuid4(),
            audit_id=audit.id,
            kind=EvidenceKind.sampling_run.value,
            service=None,
            uri=f"sampling-run:{run.id}",
            description=(
                f"Sampling {request.check.value} over {request.period_from.isoformat()} to "
                f"{request.period_to.isoformat()} ({SERVICES_READ[request.check]}): "
                f"{sampled} sampled, {len(found)} exceptions."
            ),
            added_by=actor,
        )
    )
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="audit.sampling_run",
        target=str(audit.id),
        detail={"run_id": str(run.id), "check": run.check, "sampled": sampled, "exceptions": len(found), "new": new},
    )
    return _view(run, new)


def _view(run: SamplingRun, new: int) -> SamplingRunView:
    return SamplingRunView(
        id=run.id,
        audit_id=run.audit_id,
        check=Check(run.check),
        period_from=run.period_from,
        period_to=run.period_to,
        sampled=run.sampled,
        exceptions=run.exceptions,
        new_findings=new,
        actor=run.actor,
        run_at=run.run_at,
    )


async def runs(session: AsyncSession, audit_id: uuid.UUID) -> list[SamplingRunView]:
    return [_view(run, 0) for run in await repository.runs_of(session, audit_id)]
