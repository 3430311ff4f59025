"""Request and response models of the records API."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.vault.catalogue import FIELD_TYPES

FIELD_NAMES = sorted(FIELD_TYPES)

#: A record token (``rec_...``) and a value token (``tok_...``) as the vault issues them; anything
#: else is refused before it reaches a query.
RecordToken = Annotated[str, StringConstraints(pattern=r"^rec_[A-Za-z0-9_-]{1,64}$")]
ValueToken = Annotated[str, StringConstraints(pattern=r"^tok_[A-Za-z0-9_-]{1,64}$")]


class Purpose(enum.StrEnum):
    """Why personal data is read; a closed list so the access log stays free of free-text PII."""

    customer_service = "customer_service"
    account_servicing = "account_servicing"
    kyc_review = "kyc_review"
    fraud_investigation = "fraud_investigation"
    incident_response = "incident_response"
    regulatory_report = "regulatory_report"
    internal_audit = "internal_audit"
    customer_notification = "customer_notification"
    authentication = "authentication"


def _known_fields(names: list[str]) -> list[str]:
    unknown = sorted(set(names) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(FIELD_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError("a field is named twice")
    return names


class StoreRecord(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11",
                    "label": "profile",
                    "fields": {"name": "张三", "national_id": "11010519491231002X", "phone": "13812345678"},
                }
            ]
        },
    )

    subject_id: uuid.UUID = Field(description="The customer the data belongs to (identity's customer id).")
    label: str = Field(default="profile", pattern=r"^[a-z0-9_.-]{1,64}$", description="What the record is.")
    fields: dict[str, str] = Field(min_length=1, max_length=32, description="Field type → value.")
    key: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="Records key ring to use (e.g. an SM4 one); the configured default when omitted.",
    )

    @field_validator("fields")
    @classmethod
    def _fields_known(cls, value: dict[str, str]) -> dict[str, str]:
        _known_fields(list(value))
        return value


class UpdateRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"fields": {"phone": "13987654321"}}]})

    fields: dict[str, str] = Field(min_length=1, max_length=32)

    @field_validator("fields")
    @classmethod
    def _fields_known(cls, value: dict[str, str]) -> dict[str, str]:
        _known_fields(list(value))
        return value


class FieldMeta(BaseModel):
    token: str = Field(description="Stable token of this value; changes only when the value changes.")
    data_class: str


class RecordMeta(BaseModel):
    """A record without any value: what a caller keeps (tokens) and what it holds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0c9f5d7e-3b1a-4f57-8c1e-7d2a9b6e4f30",
                    "token": "rec_Yk3v9tQ2xW7mN1pL5sR8uA0b",
                    "subject_id": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11",
                    "label": "profile",
                    "shredded": False,
                    "fields": {"phone": {"token": "tok_Qw8e7r6t5y4u3i2o1p0aSdFg", "data_class": "core_identity"}},
                }
            ]
        }
    )

    id: uuid.UUID
    token: str
    subject_id: uuid.UUID
    label: str
    shredded: bool
    created_at: datetime
    updated_at: datetime
    fields: dict[str, FieldMeta]


class StoredRecord(RecordMeta):
    masked: dict[str, str] = Field(description="The stored values, masked (what was stored, as staff would see it).")
    changed: list[str] = Field(default_factory=list, description="Fields whose value (and token) changed.")


class ReadOptions(BaseModel):
    purpose: Purpose
    reference: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._:/-]{1,64}$",
        description="Case, ticket or approval reference justifying the read (ids, not names).",
    )
    fields: list[str] = Field(min_length=1, max_length=32, description="The fields to read, named explicitly.")
    unmasked: bool = Field(default=False, description="Ask for clear values (needs vault:decrypt).")
    approval_id: uuid.UUID | None = Field(
        default=None, description="An approved `vault.unmasked_read` request, for bulk or sensitive unmasked reads."
    )

    @field_validator("fields")
    @classmethod
    def _fields_known(cls, value: list[str]) -> list[str]:
        return _known_fields(value)


class ReadRecord(ReadOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"purpose": "customer_service", "reference": "CASE-2024-0042", "fields": ["name", "phone"]}]
        },
    )


class BulkRead(ReadOptions):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "records": ["0c9f5d7e-3b1a-4f57-8c1e-7d2a9b6e4f30"],
                    "purpose": "kyc_review",
                    "fields": ["name", "national_id"],
                }
            ]
        },
    )

    records: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    tokens: list[RecordToken] = Field(default_factory=list, max_length=1000, description="Record tokens (`rec_...`).")


class TokenRead(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tokens": ["tok_Qw8e7r6t5y4u3i2o1p0aSdFg"], "purpose": "customer_notification"}]
        },
    )

    tokens: list[ValueToken] = Field(min_length=1, max_length=1000, description="Field tokens (`tok_...`).")
    purpose: Purpose
    reference: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:/-]{1,64}$")
    unmasked: bool = False
    approval_id: uuid.UUID | None = None


class FieldValue(BaseModel):
    value: str
    masked: bool
    token: str
    data_class: str


class RecordView(BaseModel):
    id: uuid.UUID
    token: str
    subject_id: uuid.UUID
    label: str
    fields: dict[str, FieldValue] = Field(description="Requested fields the record holds (absent ones are omitted).")


class ReadResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_id": "9d7c1c5e-52a8-4a4e-a0c4-3a4b2d6f7e81",
                    "unmasked": False,
                    "records": [
                        {
                            "id": "0c9f5d7e-3b1a-4f57-8c1e-7d2a9b6e4f30",
                            "token": "rec_Yk3v9tQ2xW7mN1pL5sR8uA0b",
                            "subject_id": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11",
                            "label": "profile",
                            "fields": {
                                "phone": {
                                    "value": "138****5678",
                                    "masked": True,
                                    "token": "tok_Qw8e7r6t5y4u3i2o1p0aSdFg",
                                    "data_class": "core_identity",
                                }
                            },
                        }
                    ],
                }
            ]
        }
    )

    access_id: uuid.UUID = Field(description="The access-log entry of this read.")
    unmasked: bool
    records: list[RecordView]


class TokenValue(BaseModel):
    record_id: uuid.UUID
    field: str
    value: str
    masked: bool


class TokenReadResult(BaseModel):
    access_id: uuid.UUID
    unmasked: bool
    values: dict[str, TokenValue]


class Lookup(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"field": "national_id", "value": "11010519491231002X", "purpose": "customer_service"}]
        },
    )

    field: str = Field(
        description="An indexed field type: " + ", ".join(t.name for t in FIELD_TYPES.values() if t.indexable) + "."
    )
    value: str = Field(max_length=256)
    purpose: Purpose
    reference: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:/-]{1,64}$")


class LookupMatch(BaseModel):
    id: uuid.UUID
    token: str
    subject_id: uuid.UUID
    label: str


class LookupResult(BaseModel):
    access_id: uuid.UUID
    matches: list[LookupMatch]


class ShredResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11",
                    "shredded": True,
                    "keys_destroyed": 1,
                    "records": 2,
                }
            ]
        }
    )

    subject_id: uuid.UUID
    shredded: bool = Field(description="False when the subject had been shredded before (idempotent).")
    keys_destroyed: int
    records: int
