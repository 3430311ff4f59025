"""Request and response models of key management."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.vault.crypto.aead import Algorithm
from services.vault.keys.service import Purpose

KEY_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class CreateKey(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "records-sm4", "purpose": "records", "algorithm": "sm4-gcm"}]},
    )

    name: str = Field(pattern=KEY_NAME)
    purpose: Purpose
    algorithm: Algorithm = Algorithm.aes_256_gcm
    owner: str | None = Field(
        default=None, pattern=r"^[a-z0-9_-]{1,64}$", description="Service that may use a transit key."
    )


class UpdateKey(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"min_decryption_version": 2}]})

    min_decryption_version: int = Field(ge=1, description="Versions below this stop decrypting (retired).")


class VersionInfo(BaseModel):
    version: int
    created_at: datetime
    root_key_id: str
    retired: bool
    data_keys: int | None = Field(description="Data keys still wrapped under this version (records keys).")


class KeyInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "records",
                    "purpose": "records",
                    "owner": None,
                    "algorithm": "aes-256-gcm",
                    "current_version": 2,
                    "min_decryption_version": 1,
                    "versions": [],
                }
            ]
        }
    )

    name: str
    purpose: Purpose
    owner: str | None
    algorithm: Algorithm
    current_version: int
    min_decryption_version: int
    created_at: datetime
    updated_at: datetime
    versions: list[VersionInfo]


class RewrapJobInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6e8d1f0a-5c2b-4a7d-9e3f-1b2c3d4e5f60",
                    "key": "records",
                    "target_version": 2,
                    "state": "running",
                    "total": 1200,
                    "done": 500,
                    "progress": 0.4167,
                }
            ]
        }
    )

    id: uuid.UUID
    key: str
    target_version: int
    state: str
    total: int
    done: int
    progress: float
    started_by: str
    created_at: datetime
    finished_at: datetime | None


class RootKeyStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current": "root-2", "previous_configured": ["root-1"], "kek_versions": {"root-1": 3, "root-2": 1}}
            ]
        }
    )

    current: str = Field(description="Id of the root key new KEK versions are wrapped with.")
    previous_configured: list[str] = Field(description="Earlier root keys this replica can still unwrap with.")
    kek_versions: dict[str, int] = Field(description="KEK versions per root key id that wraps them.")


class RootRewrap(BaseModel):
    root_key_id: str
    rewrapped: int
    remaining: int = Field(description="KEK versions still under another root (0: the old root can be removed).")
