"""Bodies of the token, session and revocation endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class RefreshRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "q3Wc0n0Zk2m5..."}]})

    refresh_token: str = Field(min_length=10, max_length=200)


class ServiceTokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"access_token": "eyJhbGciOiJFZERTQSJ9...", "token_type": "Bearer", "expires_in": 900, "scope": ""}
            ]
        }
    )

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int
    scope: str


class SessionView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b7d1c5e-3f2a-4b8e-9c1d-7a6e5f4d3c2b",
                    "current": True,
                    "acr": "aal2",
                    "amr": ["pwd", "otp"],
                    "device_id": "ios-7f3a9c",
                    "region": "CN-SH",
                    "user_agent": "BankApp/5.2 iOS",
                    "created_at": "2026-11-21T08:00:00Z",
                    "last_seen_at": "2026-11-21T08:10:00Z",
                    "expires_at": "2026-12-21T08:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    current: bool
    acr: str
    amr: list[str]
    device_id: str | None
    region: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


class RevokedCount(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"revoked": 2}]})

    revoked: int


class Revocation(BaseModel):
    session_id: uuid.UUID
    revoked_at: datetime
    expires_at: datetime = Field(description="After this no token of the session can be valid anyway.")


class RevocationFeed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "revocations": [
                        {
                            "session_id": "0b7d1c5e-3f2a-4b8e-9c1d-7a6e5f4d3c2b",
                            "revoked_at": "2026-11-21T08:10:00Z",
                            "expires_at": "2026-11-21T08:20:30Z",
                        }
                    ],
                    "cursor": "MjAyNi0xMS0yMVQwODoxMDowMCswMDowMHwwYjdk...",
                }
            ]
        }
    )

    revocations: list[Revocation]
    cursor: str


class DeviceView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "ios-7f3a9c",
                    "user_agent": "BankApp/5.2 iOS",
                    "first_seen_at": "2026-11-01T08:00:00Z",
                    "last_seen_at": "2026-11-21T08:00:00Z",
                    "last_region": "CN-SH",
                }
            ]
        }
    )

    device_id: str
    user_agent: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    last_region: str | None
