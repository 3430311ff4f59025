"""Typed errors of the model registry (rendered as problem+json by the kit)."""

from __future__ import annotations

from kit.errors import Conflict, Forbidden, NotFound


class ModelNotFound(NotFound):
    code = "model_not_found"
    title = "No such model version"


class ApprovalRequired(Forbidden):
    code = "approval_required"
    title = "This model change needs an approved request"


class ModelNotEvaluated(Conflict):
    code = "model_not_evaluated"
    title = "The model has no evaluation on a later window"


class ModelBelowFloor(Conflict):
    code = "model_below_floor"
    title = "The model's evaluation is worse than the configured floor"


class ModelStateConflict(Conflict):
    code = "model_state_conflict"
    title = "The model cannot change to that state now"


class ModelRefused(Conflict):
    code = "model_file_refused"
    title = "The stored model file cannot be loaded"
