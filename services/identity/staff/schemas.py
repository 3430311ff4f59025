"""Bodies of the staff endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.identity.accounts.schemas import ACCOUNT_EXAMPLE, AccountView


class StaffCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"username": "li.teller", "email": "li@bank.example"}]})

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    email: str | None = Field(default=None, max_length=254)


class StaffCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"id": "4b1c...", "username": "li.teller", "one_time_password": "q8-Xr2!mTz_4Lp9a"}]
        }
    )

    id: uuid.UUID
    username: str
    one_time_password: str = Field(description="Shown once; must be changed at the first login.")


class Reason(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "customer called, identity verified"}]})

    reason: str = Field(min_length=1, max_length=200)


class UnfreezeRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"approval_id": "7c9e...", "reason": "fraud case closed"}]}
    )

    approval_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=200)


class Restrictions(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "risk_level": "high",
                    "allowed_hours_utc": [0, 14],
                    "allowed_regions": ["CN-SH"],
                    "known_devices_only": True,
                    "on_violation": "challenge",
                    "home_region": "CN-SH",
                }
            ]
        }
    )

    risk_level: Literal["low", "normal", "medium", "high"] = "normal"
    allowed_hours_utc: list[int] | None = Field(default=None, min_length=2, max_length=2)
    allowed_regions: list[str] | None = Field(default=None, max_length=20)
    known_devices_only: bool = False
    on_violation: Literal["challenge", "deny"] = "challenge"
    home_region: str | None = Field(default=None, max_length=64)


class LoginLogEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "occurred_at": "2026-11-21T08:00:00Z",
                    "account_id": "6f1c...",
                    "ip": "198.51.100.7",
                    "region": "CN-SH",
                    "device_id": "ios-7f3a9c",
                    "user_agent": "BankApp/5.2 iOS",
                    "method": "pwd",
                    "result": "failure",
                    "reason": "wrong_password",
                    "failed_count": 2,
                    "signals": ["odd_hour"],
                    "risk_decision": "allow",
                }
            ]
        }
    )

    id: int
    occurred_at: datetime
    account_id: uuid.UUID | None
    ip: str | None
    region: str | None
    device_id: str | None
    user_agent: str | None
    method: str
    result: str
    reason: str | None
    failed_count: int
    signals: list[str]
    risk_decision: str | None


class Purged(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"deleted": 1200}]})

    deleted: int


class FreezeRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "risk score 93 on transfer"}]})

    reason: str = Field(min_length=1, max_length=200)


class StepUpConsume(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"account_id": "6f1c...", "session_id": "0b7d...", "action": "transfer.large"}]}
    )

    account_id: uuid.UUID
    session_id: uuid.UUID
    action: str = Field(min_length=1, max_length=64)
    payload_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="For `transfer.large` (required): the hash the holder's step-up was bound to.",
    )


class StepUpConsumed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"consumed": True, "method": "otp"}]})

    consumed: bool
    method: str


class SinkMessageView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5d2e...",
                    "account_id": "6f1c...",
                    "channel": "sms",
                    "template": "code.login:3f2a...",
                    "recipient": "+8613800138000",
                    "body": "Your Bank Suite code is 482913. It expires in 5 minutes. Never share it.",
                    "status": "sink",
                    "created_at": "2026-11-21T08:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    account_id: uuid.UUID | None
    channel: str
    template: str
    recipient: str | None = Field(description="Who received it; null until delivered (read from the vault then).")
    body: str
    status: str = Field(description="pending, sink (delivered to the development sink) or dead.")
    created_at: datetime


class MaskedPersonalData(BaseModel):
    """A customer's real-name data as the vault masks it (read for `account_servicing`, logged by the vault)."""

    name: str | None = None
    national_id: str | None = Field(default=None, description="A `cn_resident` ID number, masked.")
    id_document: str | None = Field(
        default=None, description="A `passport` or `other` document number, masked (first character, last 3)."
    )
    phone: str | None = None
    email: str | None = None
    phone_verified: bool
    email_verified: bool


class StaffAccountView(AccountView):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                ACCOUNT_EXAMPLE
                | {
                    "id_type": "cn_resident",
                    "personal_data": {
                        "name": "王**",
                        "national_id": "110***********1234",
                        "phone": "139****5678",
                        "email": "c***@example.com",
                        "phone_verified": True,
                        "email_verified": False,
                    },
                }
            ]
        }
    )

    id_type: str | None = Field(default=None, description="The identity document type of a customer.")
    personal_data: MaskedPersonalData | None = Field(
        default=None, description="Masked values from the vault; absent for staff and closed (shredded) accounts."
    )


NotificationEvent = Literal[
    "transaction_blocked", "account_frozen", "incident_update", "contact_changed", "security_alert"
]


class NotificationRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"event": "transaction_blocked", "message": "A transfer was blocked. Call us if it was not you."}
            ]
        }
    )

    event: NotificationEvent
    message: str = Field(
        min_length=1,
        max_length=500,
        description="Text without personal data (it goes by SMS and email); control characters are refused.",
        pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$",
    )


class NotificationQueued(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"queued": 2, "duplicate": False}]})

    queued: int = Field(description="Messages queued now, one per verified channel (0 for a repeated key).")
    duplicate: bool = Field(default=False, description="The Idempotency-Key was seen before: nothing was queued.")


class RiskLevelRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"level": "high", "reason": "confirmed fraud"}]})

    level: Literal["low", "medium", "high"]
    reason: str = Field(min_length=1, max_length=200)


class RiskLevelView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"account_id": "0b7d1c5e-3f2a-4b8e-9c1d-7a6e5f4d3c2b", "risk_level": "high"}]}
    )

    account_id: uuid.UUID
    risk_level: str


class StaffClose(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"approval_id": "7c9e...", "reason": "customer request, signed form 2291"}]}
    )

    approval_id: uuid.UUID = Field(description='An approved `account.close` approval, payload `{"account_id"}`.')
    reason: str = Field(min_length=1, max_length=200)


class StaffContactProposal(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channel": "sms", "value": "13900139000"}]})

    channel: Literal["sms", "email"]
    value: str = Field(min_length=3, max_length=254)


class ContactChangePayload(BaseModel):
    """The payload of the `account.change` approval for a contact change: the new value masked for the
    checker, and keyed-hashed so the approval is bound to exactly that value (the value itself never
    leaves identity and the vault)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "0b7d1c5e-3f2a-4b8e-9c1d-7a6e5f4d3c2b",
                    "change": "contact",
                    "channel": "sms",
                    "value_masked": "139****9000",
                    "value_digest": "5f1c...",
                }
            ]
        }
    )

    account_id: str
    change: Literal["contact"] = "contact"
    channel: Literal["sms", "email"]
    value_masked: str
    value_digest: str


class StaffContactChange(StaffContactProposal):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"channel": "sms", "value": "13900139000", "approval_id": "7c9e...", "reason": "lost phone, ID seen"}
            ]
        }
    )

    approval_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=200)


class StaffContactChanged(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channel": "sms", "verified": False, "old_told": True}]})

    channel: str
    verified: bool
    old_told: bool
