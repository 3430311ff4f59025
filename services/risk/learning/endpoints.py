"""Staff routes of the model registry: list versions, promote and roll back by approval."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission, payload_hash
from services.risk.config import RiskSettings
from services.risk.learning import service
from services.risk.learning.schemas import ApprovalBody, ApprovalRequest, ChangeOut, ModelOut
from services.risk.models import ModelState

staff = APIRouter(prefix="/staff/models", tags=["models"])

Reader = Annotated[Principal, Depends(RequirePermission("risk:read"))]
Modifier = Annotated[Principal, Depends(RequirePermission("risk:modify"))]


async def _settings(request: Request) -> RiskSettings:
    settings = request.app.state.settings
    assert isinstance(settings, RiskSettings)
    return settings


async def _gate(request: Request) -> service.ApprovalGate:
    gate: service.ApprovalGate = request.app.state.permission_client
    return gate


Settings = Annotated[RiskSettings, Depends(_settings)]
Gate = Annotated[service.ApprovalGate, Depends(_gate)]

_CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "approval_required (the problem carries the operation, payload and payload_hash)"},
    409: {
        "description": "model_not_evaluated, model_below_floor, model_state_conflict, model_file_refused "
        "or approval_refused (not approved by a second person, expired, already used or for another change)"
    },
}


@staff.get("", response_model=list[ModelOut], summary="Model versions, newest first")
async def list_models(
    session: DBSession,
    principal: Reader,
    state: Annotated[ModelState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ModelOut]:
    versions = await service.list_versions(session, state=state.value if state else None, limit=limit)
    return [ModelOut.of(v) for v in versions]


@staff.get("/{model_id}", response_model=ModelOut, summary="One model version with its evaluation")
async def get_model(model_id: uuid.UUID, session: DBSession, principal: Reader) -> ModelOut:
    return ModelOut.of(await service.get(session, model_id))


@staff.get(
    "/{model_id}/promotion-request",
    response_model=ApprovalRequest,
    summary="The approval request a promotion of this version needs",
)
async def promotion_request(model_id: uuid.UUID, session: DBSession, principal: Modifier) -> ApprovalRequest:
    """Post it to `/v1/permissions/staff/approvals`; a second person approves it there."""
    payload = await service.promotion_payload(session, model_id)
    return ApprovalRequest(operation=service.OPERATION, payload=payload, payload_hash=payload_hash(payload))


@staff.post(
    "/{model_id}/promotion", response_model=ChangeOut, summary="Make a version active", responses=_CHANGE_ERRORS
)
async def promote(
    model_id: uuid.UUID, body: ApprovalBody, *, session: DBSession, settings: Settings, gate: Gate, principal: Modifier
) -> ChangeOut:
    """Needs an approved `risk.model_promotion` request for exactly this change, and evaluation figures at or
    above the configured floors. The version it replaces is retired; every replica follows within
    `RISK_MODEL_POLL_SECONDS`."""
    active, previous, approved_by = await service.promote(
        session, gate, settings, model_id=model_id, approval_id=body.approval_id, actor=principal.subject
    )
    assert active.approval_id is not None
    return ChangeOut(
        kind="promotion",
        active=ModelOut.of(active),
        previous=ModelOut.of(previous) if previous else None,
        approval_id=active.approval_id,
        approved_by=approved_by,
    )


@staff.get("/rollback/request", response_model=ApprovalRequest, summary="The approval request a rollback needs")
async def rollback_request(session: DBSession, principal: Modifier) -> ApprovalRequest:
    payload = await service.rollback_payload(session)
    return ApprovalRequest(operation=service.OPERATION, payload=payload, payload_hash=payload_hash(payload))


@staff.post(
    "/rollback",
    response_model=ChangeOut,
    summary="Re-activate the version the active one replaced",
    responses=_CHANGE_ERRORS,
)
async def rollback(
    body: ApprovalBody, session: DBSession, settings: Settings, gate: Gate, principal: Modifier
) -> ChangeOut:
    """Same approval and floors as a promotion."""
    active, previous, approved_by = await service.rollback(
        session, gate, settings, approval_id=body.approval_id, actor=principal.subject
    )
    assert active.approval_id is not None
    return ChangeOut(
        kind="rollback",
        active=ModelOut.of(active),
        previous=ModelOut.of(previous) if previous else None,
        approval_id=active.approval_id,
        approved_by=approved_by,
    )
