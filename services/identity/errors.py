"""Domain errors of the identity service (stable codes, RFC 9457 problems)."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, Forbidden, NotAuthenticated, NotFound, TooManyRequests


class InvalidCredentials(NotAuthenticated):
    """The one answer to every failed login: unknown user, wrong password, locked, frozen or closed."""

    code = "invalid_credentials"
    title = "Login failed"


class InvalidNationalId(BadRequest):
    code = "invalid_national_id"
    title = "The ID number is not valid"


class WeakPassword(BadRequest):
    code = "weak_password"
    title = "The password does not meet the policy"


class PasswordReused(BadRequest):
    code = "password_reused"
    title = "The password was used recently"


class AlreadyRegistered(Conflict):
    code = "already_registered"
    title = "These details are already registered"


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "No such account"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "The account cannot change to that state"


class InvalidCode(BadRequest):
    code = "invalid_code"
    title = "The code is wrong, expired or already used"


class TooManyAttempts(TooManyRequests):
    code = "too_many_attempts"
    title = "Too many attempts"


class InvalidChallenge(NotAuthenticated):
    code = "invalid_challenge"
    title = "The login challenge is unknown or expired"


class FactorNotAvailable(BadRequest):
    code = "factor_not_available"
    title = "That second factor is not available for this account"


class InvalidRefreshToken(NotAuthenticated):
    code = "invalid_refresh_token"
    title = "The refresh token is not valid"


class RefreshTokenReused(NotAuthenticated):
    code = "refresh_token_reused"
    title = "A used refresh token was presented; the session is revoked"


class InvalidClient(NotAuthenticated):
    code = "invalid_client"
    title = "Client authentication failed"


class UnsupportedGrant(BadRequest):
    code = "unsupported_grant_type"
    title = "Unsupported grant type"


class InvalidScope(BadRequest):
    code = "invalid_scope"
    title = "A requested scope is not allowed for this client"


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "No such session"


class StepUpRequired(Forbidden):
    code = "step_up_required"
    title = "This action needs a fresh second factor"


class LoginDenied(Forbidden):
    code = "login_denied"
    title = "Login refused"


class ContactNotVerified(Forbidden):
    code = "contact_not_verified"
    title = "The phone number has not been verified yet"


class WebAuthnFailed(BadRequest):
    code = "webauthn_failed"
    title = "The security key response was not accepted"


class InvalidContact(BadRequest):
    code = "invalid_contact"
    title = "The phone number or email address is not valid"


class ReauthenticationRequired(Forbidden):
    """Adding or removing a second factor from a session that did not just log in at aal2."""

    code = "reauthentication_required"
    title = "Confirm with your current password and a fresh second factor"


class WrongCurrentPassword(Forbidden):
    """The current password given to confirm a sensitive change is wrong (the session itself is fine: not 401)."""

    code = "wrong_current_password"
    title = "The current password is wrong"


class AccountLocked(Forbidden):
    """A locked account's own session cannot make sensitive changes or step up until the lock ends."""

    code = "account_locked"
    title = "The account is locked after failed attempts"


class OwnAccount(Forbidden):
    """A staff member acting on their own account through a staff route (closing it, changing its contacts)."""

    code = "own_account"
    title = "Staff routes do not act on the caller's own account"


class PayloadHashRequired(BadRequest):
    code = "payload_hash_required"
    title = "This step-up is bound to one payload: give its hash"
