"""Suite-wide audit integrity: ask every service to verify its own chain, report the first bad entry of each.

Each service answers ``GET /v1/<service>/internal/audit/verification``
(mounted by the kit's app factory, scope ``audit:verify``) through the
gateway. A service that does not answer, or refuses, is reported as such:
the run is never "ok" unless every chain was checked and found intact. The
run is kept (who, when, what each service said) and appended to the audit
chain of incidents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import ServiceUnavailable
from kit.http import ServiceClient
from services.incidents.governance.integrity import repository
from services.incidents.governance.integrity.schemas import ChainStatus, FirstBad, ServiceChain, SuiteVerification
from services.incidents.models import AuditVerificationRun, audit_log

VERIFICATION_PATH = "/v1/{service}/internal/audit/verification"


async def verify_service(client: ServiceClient, service: str) -> ServiceChain:
    try:
        response = await client.request("GET", VERIFICATION_PATH.format(service=service))
    except ServiceUnavailable as exc:
        return ServiceChain(service=service, status=ChainStatus.unreachable, error=str(exc))
    if response.status_code in (401, 403):
        return ServiceChain(service=service, status=ChainStatus.refused, error=f"HTTP {response.status_code}")
    if response.status_code != 200:
        return ServiceChain(service=service, status=ChainStatus.unreachable, error=f"HTTP {response.status_code}")
    try:
        body: dict[str, Any] = response.json()
        first_bad = body.get("first_bad")
        checkpoints = body.get("checkpoints") or {}
        return ServiceChain(
            service=service,
            status=ChainStatus.ok if body["ok"] is True else ChainStatus.tampered,
            entries=int(body["entries"]),
            first_bad=FirstBad(seq=int(first_bad["seq"]), problem=str(first_bad["problem"])) if first_bad else None,
            checkpoints_checked=checkpoints.get("checked"),
            latest_checkpoint_seq=checkpoints.get("latest_seq"),
        )
    except (ValueError, KeyError, TypeError):
        return ServiceChain(service=service, status=ChainStatus.unreachable, error="malformed answer")


async def verify_suite(client: ServiceClient, services: Sequence[str]) -> list[ServiceChain]:
    """Every service's answer, in the order given (asked concurrently)."""
    return list(await asyncio.gather(*(verify_service(client, service) for service in services)))


async def run_verification(
    session: AsyncSession, client: ServiceClient, services: Sequence[str], *, actor: str, actor_kind: str
) -> SuiteVerification:
    """Verify every chain, keep the run and append it to the audit chain (in the caller's transaction)."""
    chains = await verify_suite(client, services)
    ok = all(chain.status is ChainStatus.ok for chain in chains)
    run = await repository.add_run(
        session,
        AuditVerificationRun(
            id=uuid.uuid4(), actor=actor, ok=ok, results=[chain.model_dump(mode="json") for chain in chains]
        ),
    )
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="audit.suite_verified",
        target=str(run.id),
        outcome="success" if ok else "failure",
        detail={
            "services": {
                chain.service: {
                    "status": chain.status.value,
                    "first_bad": chain.first_bad.model_dump() if chain.first_bad else None,
                }
                for chain in chains
            }
        },
    )
    return as_view(run)


def as_view(run: AuditVerificationRun) -> SuiteVerification:
    return SuiteVerification(
        id=run.id,
        run_at=run.run_at,
        actor=run.actor,
        ok=run.ok,
        services=[ServiceChain.model_validate(item) for item in run.results],
    )


async def recent(session: AsyncSession, limit: int) -> list[SuiteVerification]:
    return [as_view(run) for run in await repository.recent_runs(session, limit)]
