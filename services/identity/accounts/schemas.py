"""Request and response bodies of the account endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict


class RegistrationRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "张三",
                    "id_type": "cn_resident",
                    "id_number": "11010519491231002X",
                    "phone": "13800138000",
                    "email": "zhang.san@example.com",
                    "password": "Correct-Horse-42-Battery",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=100)
    id_type: Literal["cn_resident", "passport", "other"] = "cn_resident"
    id_number: str = Field(min_length=5, max_length=32)
    phone: str = Field(min_length=6, max_length=20)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class RegistrationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"account_id": "6f1c2a4e-0d7b-4c1e-9a8e-2b0f5d3c7e11", "verification_sent": ["sms", "email"]}]
        }
    )

    account_id: uuid.UUID
    verification_sent: list[str]


class VerifyContactRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"account_id": "6f1c2a4e-0d7b-4c1e-9a8e-2b0f5d3c7e11", "channel": "sms", "code": "482913"}]
        }
    )

    account_id: uuid.UUID
    channel: Literal["sms", "email"]
    code: str = Field(min_length=4, max_length=12)


class ResendRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"account_id": "6f1c2a4e-0d7b-4c1e-9a8e-2b0f5d3c7e11", "channel": "sms"}]}
    )

    account_id: uuid.UUID
    channel: Literal["sms", "email"]


class VerifyContactResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channel": "sms", "verified": True}]})

    channel: str
    verified: bool


#: The OpenAPI example of an account (views that add to it start from this one).
ACCOUNT_EXAMPLE: JsonDict = {
    "id": "6f1c2a4e-0d7b-4c1e-9a8e-2b0f5d3c7e11",
    "kind": "customer",
    "status": "active",
    "risk_level": "normal",
    "failed_count": 0,
    "lockout_count": 0,
    "locked_until": None,
    "must_change_password": False,
    "created_at": "2026-11-21T08:00:00Z",
}


class AccountView(BaseModel):
    """An account as staff and its holder see it: no personal data."""

    model_config = ConfigDict(json_schema_extra={"examples": [ACCOUNT_EXAMPLE]})

    id: uuid.UUID
    kind: str
    status: str
    risk_level: str
    failed_count: int
    lockout_count: int
    locked_until: datetime | None
    must_change_password: bool
    created_at: datetime


class CloseRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "customer request"}]})

    reason: str = Field(min_length=1, max_length=200)


class ContactChange(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channel": "sms", "value": "13900139000"}]})

    channel: Literal["sms", "email"]
    value: str = Field(min_length=3, max_length=254)


class ContactVerify(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channel": "sms", "code": "482913"}]})

    channel: Literal["sms", "email"]
    code: str = Field(min_length=4, max_length=12)
