"""Request and response bodies of the login endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_EXAMPLE: dict[str, Any] = {
    "status": "authenticated",
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjFhMmIzYzRkIn0...",
    "token_type": "Bearer",
    "expires_in": 600,
    "refresh_token": "q3Wc0n0Zk2m5...",
    "session_id": "0b7d1c5e-3f2a-4b8e-9c1d-7a6e5f4d3c2b",
    "acr": "aal2",
    "amr": ["pwd", "otp"],
}


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"identifier": "13800138000", "password": "Correct-Horse-42-Battery", "device_id": "ios-7f3a9c"}
            ]
        }
    )

    identifier: str = Field(min_length=1, max_length=254, description="Phone or email (customers), user name (staff).")
    password: str = Field(min_length=1, max_length=1024)
    device_id: str | None = Field(default=None, max_length=128, description="Stable id of the app installation.")


class LoginResponse(BaseModel):
    """Tokens (`status` = `authenticated`), a second-factor challenge (`mfa_required`), or, after a one-time
    or expired password, a challenge that only sets a new password (`password_change_required`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                SESSION_EXAMPLE,
                {
                    "status": "password_change_required",
                    "challenge": "Tq9xV1c...",
                    "reasons": ["must_change_password"],
                    "expires_at": "2026-11-21T08:05:00Z",
                },
                {
                    "status": "mfa_required",
                    "challenge": "G7h2kP0s...",
                    "methods": ["otp", "sms", "recovery"],
                    "reasons": ["new_device"],
                    "expires_at": "2026-11-21T08:05:00Z",
                },
            ]
        }
    )

    status: Literal["authenticated", "mfa_required", "password_change_required"]
    access_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None
    refresh_token: str | None = None
    session_id: str | None = None
    acr: str | None = None
    amr: list[str] | None = None
    challenge: str | None = None
    methods: list[str] | None = None
    reasons: list[str] | None = None
    expires_at: datetime | None = None


class NewPasswordRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"challenge": "Tq9xV1c...", "new_password": "Another-Str0ng-Phrase!"}]}
    )

    challenge: str = Field(min_length=10, max_length=100)
    new_password: str = Field(min_length=1, max_length=1024)


class ChallengeSendRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"challenge": "G7h2kP0s...", "channel": "sms"}]})

    challenge: str = Field(min_length=10, max_length=100)
    channel: Literal["sms", "email"]


class ChallengeRef(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"challenge": "G7h2kP0s..."}]})

    challenge: str = Field(min_length=10, max_length=100)


class ChallengeVerifyRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"challenge": "G7h2kP0s...", "method": "otp", "code": "123456"}]}
    )

    challenge: str = Field(min_length=10, max_length=100)
    method: Literal["otp", "sms", "email", "recovery", "webauthn"]
    code: str | None = Field(default=None, max_length=32)
    credential: dict[str, Any] | None = Field(
        default=None, description="WebAuthn assertion (PublicKeyCredential JSON)."
    )


class SentResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"sent": True, "channel": "sms"}]})

    sent: bool
    channel: str


class WebAuthnOptions(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"options": {"challenge": "x2b...", "rpId": "localhost", "allowCredentials": []}}]
        }
    )

    options: dict[str, Any]


class PasswordResetStart(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"identifier": "13800138000", "channel": "sms"}]})

    identifier: str = Field(min_length=1, max_length=254)
    channel: Literal["sms", "email"] = "sms"


class PasswordResetFinish(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"identifier": "13800138000", "code": "482913", "new_password": "Another-Str0ng-Phrase!"}]
        }
    )

    identifier: str = Field(min_length=1, max_length=254)
    code: str = Field(min_length=4, max_length=12)
    new_password: str = Field(min_length=1, max_length=1024)


class Accepted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": True}]})

    accepted: bool
