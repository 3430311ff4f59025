"""Bodies of the grant, role and SoD API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.permissions.models import Grant


class GrantRequestBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject": "3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10",
                    "role": "teller",
                    "scope": "branch:0101",
                    "expires_at": "2027-06-30T00:00:00Z",
                    "justification": "joins the Xicheng branch counter team",
                }
            ]
        },
    )

    subject: uuid.UUID = Field(description="The staff member who is to hold the role.")
    role: str = Field(min_length=1, max_length=64)
    scope: str | None = Field(default=None, min_length=1, max_length=128)
    expires_at: datetime | None = Field(default=None, description="When the grant stops working (optional).")
    justification: str = Field(default="", max_length=2000)


class GrantOut(BaseModel):
    id: uuid.UUID
    subject: str
    role: str
    scope: str | None
    requested_by: str
    approved_by: str
    approval_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    certified_at: datetime | None

    @classmethod
    def of(cls, grant: Grant, role: str) -> GrantOut:
        return cls(
            id=grant.id,
            subject=grant.subject,
            role=role,
            scope=grant.scope,
            requested_by=grant.requested_by,
            approved_by=grant.approved_by,
            approval_id=grant.approval_id,
            created_at=grant.created_at,
            expires_at=grant.expires_at,
            revoked_at=grant.revoked_at,
            last_used_at=grant.last_used_at,
            certified_at=grant.certified_at,
        )


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "moved to another team"}]})

    reason: str = Field(min_length=1, max_length=500)


class RoleOut(BaseModel):
    name: str
    description: str
    parent: str | None
    high_risk: bool
    inherits: list[str]
    allows: list[str]
    denies: list[str]


class PermissionOut(BaseModel):
    name: str
    resource_type: str
    action: str
    description: str
    high_risk: bool


class SodRuleBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role_a": "risk_analyst", "role_b": "approver", "reason": "rule author is not approver"}]
        },
    )

    role_a: str = Field(min_length=1, max_length=64)
    role_b: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


class SodRuleOut(BaseModel):
    id: uuid.UUID
    role_a: str
    role_b: str
    reason: str


class RoleChangeBody(BaseModel):
    """A custom role, whole: creating it, or replacing its definition."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "branch_supervisor",
                    "description": "Supervises a branch counter team",
                    "parent": "teller",
                    "high_risk": False,
                    "allows": ["account:freeze"],
                    "denies": [],
                    "justification": "new branch organisation",
                }
            ]
        },
    )

    name: str = Field(min_length=2, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(default="", max_length=500)
    parent: str | None = Field(default=None, max_length=64)
    high_risk: bool = False
    allows: list[str] = Field(default_factory=list, max_length=200)
    denies: list[str] = Field(default_factory=list, max_length=200)
    justification: str = Field(default="", max_length=2000)
