"""Decisions listing for sampling audits (scope `risk:read`)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from kit.auth import RequireScope
from kit.db import DBSession
from kit.errors import BadRequest
from services.risk.decisions import repository
from services.risk.decisions.schemas import DecisionOut, DecisionsOut

internal = APIRouter(
    prefix="/internal/decisions", tags=["decisions"], dependencies=[Depends(RequireScope("risk:read"))]
)


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    title = "The cursor is not one this listing gave"


def _cursor(occurred_at: datetime, transaction_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([occurred_at.isoformat(), transaction_id]).encode()).decode()


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        when, tx = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(when), str(tx)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor("unreadable cursor") from exc


@internal.get("", response_model=DecisionsOut, summary="Scored transactions and their decisions")
async def decisions(  # noqa: PLR0917 (query parameters)
    session: DBSession,
    kind: str | None = None,
    min_amount_minor: Annotated[int | None, Query(ge=0)] = None,
    occurred_from: AwareDatetime | None = None,
    occurred_to: AwareDatetime | None = None,
    after: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 200,
) -> DecisionsOut:
    """In event order; `cursor` (null on the last page) is passed back as `after`."""
    rows = await repository.page(
        session,
        kind=kind,
        min_amount_minor=min_amount_minor,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        after=_after(after),
        limit=limit,
    )
    out = [
        DecisionOut(
            transaction_id=r.transaction_id,
            account_id=r.account_id,
            customer_id=r.customer_id,
            kind=r.kind,
            amount_minor=r.amount_minor,
            currency=r.currency,
            occurred_at=r.occurred_at,
            score=r.score or 0.0,
            decision=r.decision or "allow",
            approval_id=r.approval_id,
        )
        for r in rows
    ]
    cursor = _cursor(rows[-1].occurred_at, rows[-1].transaction_id) if len(rows) == limit else None
    return DecisionsOut(decisions=out, cursor=cursor)
