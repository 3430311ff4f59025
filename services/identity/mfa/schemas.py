"""Bodies of the second-factor and step-up endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Actions a step-up can be bound to (identity's own, and ones other services consume).
StepUpAction = Literal[
    "password.change",
    "contact.change",
    "mfa.remove",
    "mfa.change",
    "mfa.recovery_codes",
    "account.close",
    "account.unfreeze",
    "transfer.large",
]


class TotpEnrolmentResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/Bank%20Suite:customer?secret=JBSW...&issuer=Bank%20Suite",
                    "qr_svg": "data:image/svg+xml;base64,PD94bWwg...",
                }
            ]
        }
    )

    secret: str
    otpauth_uri: str
    qr_svg: str


class CodeRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "123456"}]})

    code: str = Field(min_length=6, max_length=12)


class RecoveryCodes(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"recovery_codes": ["k3mzq-7wd2p", "a9x4r-hh2nt"], "shown_once": True}]}
    )

    recovery_codes: list[str]
    shown_once: bool = True


class TotpConfirmed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"confirmed": True, "recovery_codes": ["k3mzq-7wd2p"]}]})

    confirmed: bool
    recovery_codes: list[str] | None = Field(default=None, description="Issued with the first second factor only.")


class Factors(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"factors": ["otp", "sms", "email", "recovery"]}]})

    factors: list[str]


class WebAuthnRegistrationOptions(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ceremony_id": "3f0c...", "options": {"challenge": "...", "rp": {}}}]}
    )

    ceremony_id: uuid.UUID
    options: dict[str, Any]


class WebAuthnRegistration(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ceremony_id": "3f0c...", "credential": {"id": "...", "response": {}}}]}
    )

    ceremony_id: uuid.UUID
    credential: dict[str, Any]
    label: str | None = Field(default=None, max_length=64)


class WebAuthnRegistered(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"credential_id": "n2Jc...", "recovery_codes": None}]})

    credential_id: str
    recovery_codes: list[str] | None = None


class StepUpSend(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"action": "password.change", "channel": "sms"}]})

    action: StepUpAction
    channel: Literal["sms", "email"]


class StepUpRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"action": "password.change", "method": "otp", "code": "123456"}]}
    )

    action: StepUpAction
    method: Literal["otp", "sms", "email", "webauthn", "recovery"]
    code: str | None = Field(default=None, max_length=32)
    credential: dict[str, Any] | None = None
    payload_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description=(
            "For `transfer.large` (required): SHA-256 of the transfer as canonical JSON"
            " (`kit.permissions.payload_hash`). The step-up then covers exactly that transfer, as an approval does."
        ),
    )


class StepUpGranted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "9a0b...", "action": "password.change", "method": "otp", "expires_at": "2026-11-21T08:05:00Z"}
            ]
        }
    )

    id: uuid.UUID
    action: str
    method: str
    expires_at: datetime


class PasswordChange(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"current_password": "Correct-Horse-42-Battery", "new_password": "Another-Str0ng-Phrase!"}]
        }
    )

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordChanged(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"changed": True, "other_sessions_revoked": 1}]})

    changed: bool
    other_sessions_revoked: int


class FactorChangeProof(BaseModel):
    """What adding or removing a second factor needs besides a session: the current password (with a
    step-up for `mfa.change` in this session), unless the session is a login at aal2 or above made
    within the last few minutes (`factor_change_fresh_login_seconds`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"current_password": "Correct-Horse-42-Battery"}]})

    current_password: str | None = Field(default=None, min_length=1, max_length=1024)


class PasskeyView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "credential_id": "mVQk2v0Yx3c...",
                    "label": "YubiKey 5",
                    "created_at": "2026-11-01T08:00:00Z",
                    "last_used_at": "2026-11-21T08:00:00Z",
                }
            ]
        }
    )

    credential_id: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
