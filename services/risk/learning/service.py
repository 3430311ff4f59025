"""The model registry's rules: candidates, promotion and rollback by maker-checker approval.

- A trained model is registered as a **candidate** with its file, hash, training and
  evaluation windows and its figures on the later window.
- **Promotion** makes a candidate (or a retired version) the one **active** version and
  retires the one before. **Rollback** re-activates the version the current one replaced.
  Both need an approval of the ``risk.model_promotion`` operation by a second person
  (permissions' maker-checker; the approval is bound to the exact change: target version,
  its hash and the version it replaces, so it cannot be replayed for another change) and
  are refused when the target's evaluation figures are missing or below the configured
  floors. The stored file must load (hash and layout checked) before it can go live.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from kit.permissions import payload_hash
from services.risk.config import RiskSettings
from services.risk.learning import repository
from services.risk.learning.errors import (
    ApprovalRequired,
    ModelBelowFloor,
    ModelNotEvaluated,
    ModelNotFound,
    ModelRefused,
    ModelStateConflict,
)
from services.risk.learning.features import FEATURE_NAMES
from services.risk.learning.model import ModelFileRefused, load_model
from services.risk.models import ModelChange, ModelState, ModelVersion, audit_log

if TYPE_CHECKING:  # training pulls in scikit-learn, which the running service never needs
    from services.risk.learning.training import TrainingResult

OPERATION = "risk.model_promotion"
FLOORS = (
    ("average_precision", "model_floor_average_precision"),
    ("recall_at_1pct_fpr", "model_floor_recall_at_1pct_fpr"),
    ("card_precision_at_100", "model_floor_card_precision_at_100"),
)


class ApprovalGate(Protocol):
    """Permissions' approval execution (kit's PermissionClient is one)."""

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]: ...


async def register(session: AsyncSession, result: TrainingResult, *, created_by: str, note: str = "") -> ModelVersion:
    """Store a trained model as a candidate (the CLI's last step)."""
    version = ModelVersion(
        state=ModelState.candidate,
        format=result.format,
        sha256=result.sha256,
        model=result.model,
        size_bytes=len(result.model),
        feature_names=list(FEATURE_NAMES),
        metrics=result.metrics_dict(),
        params=dict(result.params),
        train_from=result.windows.train_from,
        train_to=result.windows.train_to,
        test_from=result.windows.test_from,
        test_to=result.windows.test_to,
        note=note,
        created_by=created_by,
    )
    await repository.add(session, version)
    await audit_log.append(
        session,
        actor=created_by,
        actor_kind="staff",
        action="risk.model_registered",
        target=str(version.id),
        detail={"version": version.version, "sha256": version.sha256, "metrics": version.metrics},
    )
    return version


async def get(session: AsyncSession, model_id: uuid.UUID) -> ModelVersion:
    version = await repository.get(session, model_id)
    if version is None:
        raise ModelNotFound(f"no model version {model_id}")
    return version


async def list_versions(session: AsyncSession, *, state: str | None = None, limit: int = 100) -> list[ModelVersion]:
    return await repository.list_versions(session, state=state, limit=limit)


def check_floor(version: ModelVersion, settings: RiskSettings) -> None:
    """Refuse a version whose evaluation is missing or worse than any configured floor."""
    metrics = version.metrics or {}
    missing = [name for name, _ in FLOORS if not isinstance(metrics.get(name), int | float)]
    if missing:
        raise ModelNotEvaluated(f"{version.version} has no {', '.join(missing)}", missing=missing)
    below = {
        name: {"value": metrics[name], "floor": getattr(settings, field)}
        for name, field in FLOORS
        if float(metrics[name]) < getattr(settings, field)
    }
    if below:
        raise ModelBelowFloor(f"{version.version} is below the floor on {', '.join(below)}", below=below)


def change_payload(kind: str, target: ModelVersion, current: ModelVersion | None) -> dict[str, Any]:
    """What an approval of this change is bound to."""
    return {
        "change": kind,
        "model_id": str(target.id),
        "version": target.version,
        "sha256": target.sha256,
        "replaces_model_id": None if current is None else str(current.id),
    }


def _require_approval(approval_id: uuid.UUID | None, payload: dict[str, Any]) -> uuid.UUID:
    if approval_id is None:
        raise ApprovalRequired(
            f"ask for an approval of {OPERATION} with this payload, then repeat with its approval_id",
            operation=OPERATION,
            payload=payload,
            payload_hash=payload_hash(payload),
        )
    return approval_id


async def _loadable(session: AsyncSession, version: ModelVersion) -> None:
    stored = await repository.get(session, version.id, with_model=True)
    assert stored is not None
    try:
        load_model(stored.model, sha256=stored.sha256, version=stored.version)
    except ModelFileRefused as exc:
        raise ModelRefused(str(exc)) from exc


async def _switch(
    session: AsyncSession,
    gate: ApprovalGate,
    *,
    kind: str,
    target: ModelVersion,
    current: ModelVersion | None,
    approval_id: uuid.UUID | None,
    actor: str,
    settings: RiskSettings,
) -> tuple[ModelVersion, ModelVersion | None, list[str]]:
    check_floor(target, settings)
    payload = change_payload(kind, target, current)
    approval = _require_approval(approval_id, payload)
    await _loadable(session, target)
    outcome = await gate.execute_approval(str(approval), OPERATION, payload)
    approved_by = [str(a) for a in outcome.get("approved_by", [])]
    if current is not None:
        await repository.set_state(session, current, ModelState.retired)
    await repository.set_state(session, target, ModelState.active)
    target.approval_id = approval
    await repository.add_change(
        session,
        ModelChange(
            kind=kind,
            from_version=None if current is None else current.id,
            to_version=target.id,
            approval_id=approval,
            approved_by=approved_by,
            executed_by=actor,
        ),
    )
    await audit_log.append(
        session,
        actor=actor,
        action=f"risk.model_{kind}",
        target=str(target.id),
        detail={
            "version": target.version,
            "sha256": target.sha256,
            "replaces": None if current is None else current.version,
            "approval_id": str(approval),
            "approved_by": approved_by,
        },
    )
    return target, current, approved_by


async def promote(
    session: AsyncSession,
    gate: ApprovalGate,
    settings: RiskSettings,
    *,
    model_id: uuid.UUID,
    approval_id: uuid.UUID | None,
    actor: str,
) -> tuple[ModelVersion, ModelVersion | None, list[str]]:
    """Make the version active on an executed approval (the active one is retired)."""
    await repository.lock_registry(session)
    target = await get(session, model_id)
    if target.state == ModelState.active:
        raise ModelStateConflict(f"{target.version} is already active")
    current = await repository.active(session)
    return await _switch(
        session,
        gate,
        kind="promotion",
        target=target,
        current=current,
        approval_id=approval_id,
        actor=actor,
        settings=settings,
    )


async def rollback(
    session: AsyncSession,
    gate: ApprovalGate,
    settings: RiskSettings,
    *,
    approval_id: uuid.UUID | None,
    actor: str,
) -> tuple[ModelVersion, ModelVersion | None, list[str]]:
    """Re-activate the version the active one replaced (on an executed approval)."""
    await repository.lock_registry(session)
    current = await repository.active(session)
    if current is None:
        raise ModelStateConflict("no model is active: nothing to roll back")
    change = await repository.last_change_to(session, current.id)
    if change is None or change.from_version is None:
        raise ModelStateConflict(f"{current.version} replaced no earlier version")
    target = await get(session, change.from_version)
    return await _switch(
        session,
        gate,
        kind="rollback",
        target=target,
        current=current,
        approval_id=approval_id,
        actor=actor,
        settings=settings,
    )


async def rollback_payload(session: AsyncSession) -> dict[str, Any]:
    current = await repository.active(session)
    if current is None:
        raise ModelStateConflict("no model is active: nothing to roll back")
    change = await repository.last_change_to(session, current.id)
    if change is None or change.from_version is None:
        raise ModelStateConflict(f"{current.version} replaced no earlier version")
    return change_payload("rollback", await get(session, change.from_version), current)


async def promotion_payload(session: AsyncSession, model_id: uuid.UUID) -> dict[str, Any]:
    target = await get(session, model_id)
    return change_payload("promotion", target, await repository.active(session))
