"""Request and response bodies of the check API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

PERMISSION_PATTERN = r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$"


class CheckRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"subject": "3f1c2a9e-7b7d-4c55-9a41-0d8a3c2e6f10", "permission": "vault:decrypt"}]
        },
    )

    subject: str = Field(min_length=1, max_length=64, description="Staff id (the `sub` of identity's tokens).")
    permission: str = Field(pattern=PERMISSION_PATTERN, max_length=100, description="`<resource_type>:<action>`.")
    scope: str | None = Field(default=None, max_length=128, description="A branch, a customer segment...")


class CheckResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "allowed": True,
                    "reason": "allowed by grant 9d0f... (role compliance_officer)",
                    "grant_id": "9d0f6a7e-2a44-4d1e-8a8b-6f4c1f0c2b11",
                    "role": "compliance_officer",
                }
            ]
        }
    )

    allowed: bool
    reason: str
    grant_id: str | None = None
    role: str | None = None


class BatchCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[CheckRequest] = Field(min_length=1, max_length=10_000)


class BatchCheckResponse(BaseModel):
    results: list[CheckResponse]
