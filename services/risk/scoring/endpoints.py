"""Scoring routes (service tokens with scope `risk:score`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from kit.auth import RequireScope
from services.risk.deps import Models, Rules, Sessions, Settings
from services.risk.scoring import service
from services.risk.scoring.schemas import LoginIn, LoginScore, TransactionIn, TransactionScore

internal = APIRouter(prefix="/internal", tags=["scoring"], dependencies=[Depends(RequireScope("risk:score"))])


@internal.post("/transactions/score", response_model=TransactionScore, summary="Score a transaction")
async def score_transaction(
    body: TransactionIn, sessions: Sessions, settings: Settings, rules: Rules, models: Models
) -> TransactionScore:
    """Score 0-100 (with decimals) from baselines, rules and the promoted model, with reasons and a
    decision. Idempotent on `transaction_id`: a repeat answers the first decision and is never scored
    twice. Time is the event's `occurred_at`. The scoring owns its transaction: when the state store
    cannot answer, the rules judge the transaction alone and the decision is at least `step_up`."""
    return await service.score_transaction(sessions, settings, rules, models, body)


@internal.post("/logins/score", response_model=LoginScore, summary="Score a login")
async def score_login(body: LoginIn, sessions: Sessions, settings: Settings) -> LoginScore:
    """identity's question at each login (docs/contracts.md): allow, challenge or deny, with reasons.
    The login's place and time are kept for the R-II.2.2 rule on later transactions."""
    return await service.score_login(sessions, settings, body)
