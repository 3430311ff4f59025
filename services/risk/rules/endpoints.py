"""Rule sets (staff): propose, backtest, shadow, activate with an approval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from kit.auth import Principal, RequireAcr
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.risk.deps import Permissions, Rules, Settings
from services.risk.errors import RuleSetNotFound
from services.risk.rules import repository, service
from services.risk.rules.schemas import (
    ActivationIn,
    BacktestIn,
    BacktestOut,
    RuleSetIn,
    RuleSetOut,
    RuleSetsOut,
    ShadowIn,
    ShadowReport,
)

staff = APIRouter(prefix="/staff/rulesets", tags=["rules"])

Reader = Annotated[Principal, Depends(RequirePermission("risk:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("risk:modify"))]
#: Changing the rules needs a session that passed a second factor.
StepUp = Depends(RequireAcr("aal2"))


@staff.get("", response_model=RuleSetsOut, summary="Rule set versions")
async def versions(session: DBSession, principal: Reader) -> RuleSetsOut:
    return RuleSetsOut(rulesets=[RuleSetOut.of(r) for r in await repository.all_versions(session)])


@staff.get("/{version}", response_model=RuleSetOut, summary="One version")
async def show(version: int, session: DBSession, principal: Reader) -> RuleSetOut:
    row = await repository.get(session, version)
    if row is None:
        raise RuleSetNotFound(f"no rule set version {version}")
    return RuleSetOut.of(row, service.approval_request(row) if row.state == "pending" else None)


@staff.post(
    "",
    response_model=RuleSetOut,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a version",
    dependencies=[StepUp],
)
async def propose(body: RuleSetIn, session: DBSession, principal: Modifier) -> RuleSetOut:
    """A candidate version (state `pending`), validated (every rule compiles and answers true/false).
    `approval_request` is what to submit to permissions (`POST /v1/permissions/staff/approvals`);
    a second person approves it there, then `activation` makes the version live."""
    row = await service.propose(session, body, actor=principal.subject)
    return RuleSetOut.of(row, service.approval_request(row))


@staff.post(
    "/{version}/activation", response_model=RuleSetOut, summary="Make an approved version live", dependencies=[StepUp]
)
async def activate(
    version: int, *, body: ActivationIn, session: DBSession, permissions: Permissions, rules: Rules, principal: Modifier
) -> RuleSetOut:
    """Executes the approval in permissions (once; its payload must match this version's rules)."""
    row = await service.activate(session, permissions, rules, version, body.approval_id, actor=principal.subject)
    return RuleSetOut.of(row)


@staff.post("/{version}/shadow", response_model=RuleSetOut, summary="Run a candidate in shadow", dependencies=[StepUp])
async def shadow(version: int, body: ShadowIn, session: DBSession, rules: Rules, principal: Modifier) -> RuleSetOut:
    """Beside the live set, on every scored transaction: recorded and compared, never acted on."""
    row = await service.set_shadow(session, rules, version, body.enabled, actor=principal.subject)
    return RuleSetOut.of(row)


@staff.get("/{version}/shadow-report", response_model=ShadowReport, summary="Shadow run against live")
async def shadow_report(version: int, session: DBSession, principal: Reader) -> ShadowReport:
    return await service.shadow_report(session, version)


@staff.post("/{version}/backtests", response_model=BacktestOut, summary="Backtest on stored history")
async def backtest(
    version: int, *, body: BacktestIn, session: DBSession, settings: Settings, rules: Rules, principal: Reader
) -> BacktestOut:
    """Replays stored transactions of the window in event time through the candidate and the live set:
    precision, recall, alert volume and the decisions that would change."""
    return await service.backtest(session, settings, rules, version, body)
