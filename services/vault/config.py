"""Settings of the vault service (environment prefix `VAULT_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import DEV_SECRET_MARKER, ServiceSettings


class VaultSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="VAULT_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "vault"

    root_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "vault-root-key"),
        description=(
            "Root key material (32+ random bytes, base64 or text; a Kubernetes secret in production). "
            "Every key-encryption key is wrapped by a key derived from it."
        ),
    )
    root_key_id: str = Field(
        default="root-1",
        description="Name recorded next to every wrapped key-encryption key (which root wrapped it).",
    )
    previous_root_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description=(
            "Earlier root keys by id (JSON object), kept only while `POST /staff/root-key/rewrap` "
            "moves the key-encryption keys under the current root."
        ),
    )
    root_algorithm: str = Field(
        default="aes-256-gcm",
        pattern="^(aes-256-gcm|sm4-gcm)$",
        description="Algorithm with which the root key wraps key-encryption keys (sm4-gcm for an all-SM4 stack).",
    )
    blind_index_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "vault-blind-index-key"),
        description="HMAC key of the blind index (exact-match lookup); independent of the root key.",
    )
    backup_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "vault-backup-key"),
        description="Key that encrypts backup files (kept apart from the database, e.g. in the backup vault).",
    )
    records_key_name: str = Field(
        default="records", description="Key ring that wraps the subjects' data keys unless a store names another."
    )
    records_algorithm: str = Field(
        default="aes-256-gcm",
        pattern="^(aes-256-gcm|sm4-gcm)$",
        description="Algorithm of the default records key ring when it is first created.",
    )
    key_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a replica reuses a key ring's versions before re-reading them (rotation bound).",
    )
    bulk_read_threshold: int = Field(
        default=10, ge=1, description="An unmasked read of more records than this is bulk and needs an approval."
    )
    approval_field_types: list[str] = Field(
        default=["national_id", "id_document", "bank_card", "account_number"],
        description="Field types whose unmasked read by staff needs an approval (besides transaction data).",
    )
    service_writers: list[str] = Field(
        default=["identity"], description="Service clients that may store and update personal-data records."
    )
    service_readers: list[str] = Field(
        default=["identity", "risk", "incidents"],
        description="Service clients that may read records masked and look them up by blind index.",
    )
    service_decrypters: list[str] = Field(
        default=["identity"],
        description="Service clients that may read records unmasked (e.g. identity sending an SMS).",
    )
    service_shredders: list[str] = Field(
        default=["identity"], description="Service clients that may shred a subject (account closure)."
    )
    transit_autocreate: bool = Field(
        default=True,
        description="Create a transit key owned by the calling service on its first encrypt.",
    )
    transit_batch_max: int = Field(default=1000, ge=1, le=10_000, description="Largest batch of the transit API.")
    rewrap_batch_size: int = Field(default=500, ge=1, le=10_000, description="Data keys rewrapped per transaction.")
    rewrap_poll_seconds: float = Field(default=1.0, gt=0, description="How often the rewrap worker looks for jobs.")
    rewrap_enabled: bool = Field(default=True, description="Run the background rewrap worker in this process.")
    shred_ledger_file: str | None = Field(
        default=None,
        description=(
            "Append-only file (WORM mount) that receives every shredded subject id inside the shred's own "
            "transaction (written before the commit); restore applies it so a crash or an older backup cannot "
            "bring a shredded subject back. Required outside development and test."
        ),
    )
    contact_fields: list[str] = Field(
        default=["phone", "email"],
        description=(
            "Fields that carry where one-time codes and notices go; on a record a contact owner stored, "
            "staff may not change them (contact changes go through identity's own verified flow)."
        ),
    )
    contact_owners: list[str] = Field(
        default=["identity"],
        description="Service clients whose records' contact fields only the service itself may change.",
    )
    read_quota_records: int = Field(
        default=200,
        ge=1,
        description=(
            "Records one staff member may read (masked or unmasked) per quota window; a read past it needs an "
            "approved request (`vault.unmasked_read`, or `vault.over_quota_read` for a masked read)."
        ),
    )
    read_quota_window_seconds: int = Field(
        default=86_400, ge=60, description="Length of the per-reader quota window (fixed windows, UTC)."
    )
    read_quota_alert_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of the quota at which risk is told (once per reader and window) the reader approaches it.",
    )

    @model_validator(mode="after")
    def _ledger_outside_development(self) -> VaultSettings:
        require_shred_ledger(self.environment.value, self.shred_ledger_file)
        return self


def require_shred_ledger(environment: str, ledger: str | None) -> None:
    """Outside development and test the vault refuses to start without its shred ledger."""
    if ledger is None and environment not in ("development", "test"):
        raise ValueError(f"{environment} needs VAULT_SHRED_LEDGER_FILE (the shred ledger is mandatory)")
