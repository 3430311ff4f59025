"""Domain errors of the permissions service (rendered as RFC 9457 problems by the kit)."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, Forbidden, NotFound


class UnknownRole(NotFound):
    code = "unknown_role"
    title = "No such role"


class GrantNotFound(NotFound):
    code = "grant_not_found"
    title = "No such grant"


class ApprovalNotFound(NotFound):
    code = "approval_not_found"
    title = "No such approval"


class UnknownOperation(BadRequest):
    code = "unknown_operation"
    title = "No approval policy for this operation"


class InvalidPayload(BadRequest):
    code = "invalid_payload"
    title = "The payload does not fit the operation"


class InvalidExpiry(BadRequest):
    code = "invalid_expiry"
    title = "The expiry is not acceptable"


class NotEntitled(Forbidden):
    code = "not_entitled"
    title = "Not entitled to this decision"


class SelfApproval(Forbidden):
    code = "self_approval"
    title = "The maker of an approval cannot be its checker"


class ApproverExcluded(Forbidden):
    code = "approver_excluded"
    title = "This person may not decide on this approval"


class AlreadyDecided(Conflict):
    code = "already_decided"
    title = "This person has already decided on this approval"


class ApprovalNotPending(Conflict):
    code = "approval_not_pending"
    title = "The approval is no longer pending"


class ApprovalNotApproved(Conflict):
    code = "approval_not_approved"
    title = "The approval is not approved"


class ApprovalAlreadyExecuted(Conflict):
    code = "approval_already_executed"
    title = "The approval was already executed"


class ApprovalPayloadMismatch(Conflict):
    code = "approval_payload_mismatch"
    title = "The operation or payload differs from what was approved"


class ApprovalExpired(Conflict):
    code = "approval_expired"
    title = "The approval has expired"


class ExecutorNotAllowed(Forbidden):
    code = "executor_not_allowed"
    title = "This service may not execute this operation"


class SodConflict(Conflict):
    code = "sod_conflict"
    title = "Segregation of duties forbids this combination of roles"


class TrainingRequired(Conflict):
    code = "training_required"
    title = "A current security-training record is required for this role"


class AlreadyGranted(Conflict):
    code = "already_granted"
    title = "The subject already holds this role in this scope"


class SubjectClosed(Conflict):
    code = "subject_closed"
    title = "The subject's account is closed"


class NoActiveSuspension(NotFound):
    code = "no_active_suspension"
    title = "The subject has no active suspension"


class InvalidTraining(BadRequest):
    code = "invalid_training"
    title = "The training record is not acceptable"


class SelfService(Forbidden):
    code = "self_service_forbidden"
    title = "Staff cannot do this for themselves"


class ReviewNotFound(NotFound):
    code = "review_not_found"
    title = "No such review campaign or item"


class InvalidReview(BadRequest):
    code = "invalid_review"
    title = "The review campaign is not acceptable"


class ReviewClosed(Conflict):
    code = "review_closed"
    title = "The review item is already decided or its campaign is closed"
