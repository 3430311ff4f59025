"""Bodies of the API-client endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

_CLIENT_ID = Field(min_length=3, max_length=64, pattern=r"^[a-z][a-z0-9-]{2,63}$")
_SCOPES = Field(min_length=1, max_length=20, description="Scopes from the catalog (docs/contracts.md, Scopes).")


class ApiClientCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "client_id": "core-banking",
                    "scopes": ["risk:score", "risk:labels", "identity:step_up"],
                    "description": "The bank's core system",
                }
            ]
        }
    )

    client_id: str = _CLIENT_ID
    scopes: list[str] = _SCOPES
    description: str | None = Field(default=None, max_length=200)


class ApiClientRotate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"scopes": None}]})

    scopes: list[str] | None = Field(default=None, min_length=1, max_length=20, description="New scopes (optional).")


class ApiClientDeactivate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "secret exposed in a log"}]})

    reason: str = Field(min_length=1, max_length=200)


class ApiClientView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "client_id": "core-banking",
                    "scopes": ["identity:step_up", "risk:labels", "risk:score"],
                    "description": "The bank's core system",
                    "active": True,
                    "created_by": "4b1c2d3e-0000-4000-8000-000000000001",
                    "created_at": "2026-12-01T08:00:00Z",
                    "secret_rotated_at": None,
                    "deactivated_at": None,
                }
            ]
        }
    )

    client_id: str
    scopes: list[str]
    description: str | None
    active: bool
    created_by: str | None
    created_at: datetime
    secret_rotated_at: datetime | None
    deactivated_at: datetime | None


class ApiClientSecret(ApiClientView):
    client_secret: str = Field(description="Shown once: identity keeps only its hash.")
