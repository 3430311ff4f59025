"""Label routes: core banking and incidents (scope `risk:labels`), analysts under staff/."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from kit.auth import Principal, RequireScope
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.risk.labels import service
from services.risk.labels.schemas import LabelsIn, LabelsOut

internal = APIRouter(prefix="/internal/labels", tags=["labels"])
staff = APIRouter(prefix="/staff/labels", tags=["labels"])


@internal.post("", response_model=LabelsOut, summary="Label transactions (service)")
async def label_internal(
    body: LabelsIn, session: DBSession, caller: Annotated[Principal, Depends(RequireScope("risk:labels"))]
) -> LabelsOut:
    """Confirmed outcomes; unknown transaction ids are listed back, the rest applied (a later label wins)."""
    applied, unknown = await service.apply(session, body.labels, actor=caller.subject, actor_kind="service")
    return LabelsOut(applied=applied, unknown=unknown)


@staff.post("", response_model=LabelsOut, summary="Label transactions (analyst)")
async def label_staff(
    body: LabelsIn, session: DBSession, principal: Annotated[Principal, Depends(RequirePermission("alert:modify"))]
) -> LabelsOut:
    applied, unknown = await service.apply(session, body.labels, actor=principal.subject, actor_kind="staff")
    return LabelsOut(applied=applied, unknown=unknown)
