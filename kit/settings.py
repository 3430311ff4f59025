"""Settings base shared by every service.

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``IDENTITY_``, ``VAULT_``...). Values common to the whole suite (database URL,
gateway address, environment) can also be given once with the ``SUITE_``
prefix; a service-prefixed variable wins over the suite-wide one.

Secrets can also be files: every file in ``SUITE_SECRETS_DIR`` (default
``/run/secrets/bank-suite``, read only when it exists) named like the variable
(``IDENTITY_DATABASE_URL``...) gives that setting; an environment variable wins
over a file (deploy/k8s mounts each service's Secret there, docs/deploy.md).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

SUITE_ENV_PREFIX = "SUITE_"
#: Every development default secret starts with this marker, so the guard can
#: refuse it even if someone copies the value into a production config.
DEV_SECRET_MARKER = "dev-insecure-"  # noqa: S105 (a marker, not a secret)
#: Where mounted secret files are read (one file per setting, named like its variable).
SECRETS_DIR_VARIABLE = "SUITE_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/run/secrets/bank-suite"


def secrets_dir() -> Path | None:
    """The directory of secret files, or None when it does not exist (development)."""
    path = Path(os.environ.get(SECRETS_DIR_VARIABLE) or DEFAULT_SECRETS_DIR)
    return path if path.is_dir() else None


def asyncpg_url(url: str) -> str:
    """A libpq-style URL (``postgresql://...?sslmode=verify-full``) as the asyncpg dialect URL.

    asyncpg takes the TLS mode as ``ssl``; the CA file comes from ``PGSSLROOTCERT``
    (asyncpg reads it; the manifests mount the database's CA there).
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername == "postgresql+asyncpg" and "sslmode" in parsed.query:
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    return parsed.render_as_string(hide_password=False)


class Environment(enum.StrEnum):
    development = "development"
    test = "test"
    staging = "staging"
    production = "production"

    @property
    def allows_dev_secrets(self) -> bool:
        return self in (Environment.development, Environment.test)


class InsecureSettingsError(ValueError):
    """Raised at start-up when a deployed environment still uses a default secret."""


class SuiteSettings(BaseSettings):
    """Settings of every process of the suite (services and gateway)."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore", frozen=True)

    #: Process name, used for the schema, telemetry resource and logs.
    service_name: ClassVar[str] = "service"
    #: Secrets used only in development and test (never required, never read elsewhere).
    development_only_secrets: ClassVar[frozenset[str]] = frozenset()

    environment: Environment = Field(
        default=Environment.development,
        description="development, test, staging or production; staging and production refuse development secrets.",
    )
    gateway_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The one address a service knows: every service-to-service call goes through it.",
    )
    http_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of service-to-service calls.")
    http_retries: int = Field(default=2, ge=0, le=10, description="Retries of idempotent service-to-service calls.")
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP traces endpoint; no exporter when unset.")
    log_level: str = Field(default="INFO", description="Root log level.")
    log_json: bool = Field(default=True, description="JSON log lines (off: plain text for a terminal).")
    jwt_issuer: str = Field(default="bank-suite-identity", description="`iss` of access tokens.")
    jwt_audience: str = Field(default="bank-suite", description="`aud` every access token must carry.")
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=120, description="Clock skew tolerated on `exp`/`iat`.")
    jwks_path: str = Field(
        default="/v1/identity/.well-known/jwks.json",
        description="Where the signing keys are read, relative to the gateway.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        suite_env = EnvSettingsSource(settings_cls, env_prefix=SUITE_ENV_PREFIX)
        directory = secrets_dir()
        if directory is None:
            return init_settings, env_settings, suite_env, dotenv_settings
        files = SecretsSettingsSource(settings_cls, secrets_dir=directory)
        suite_files = SecretsSettingsSource(settings_cls, secrets_dir=directory, env_prefix=SUITE_ENV_PREFIX)
        return init_settings, env_settings, suite_env, dotenv_settings, files, suite_files

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> SuiteSettings:
        if self.environment.allows_dev_secrets:
            return self
        weak = [name for name, value in self._secret_values().items() if _is_weak(value)]
        if weak:
            raise InsecureSettingsError(
                f"{self.environment.value} refuses missing or development secrets: {', '.join(sorted(weak))}"
            )
        return self

    def _secret_values(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for name, field in type(self).model_fields.items():
            if name == "database_url" or name in self.development_only_secrets:
                continue  # a connection string (roles may use peer/IAM auth), or a development-only value
            annotation = field.annotation
            if annotation is SecretStr or annotation == (SecretStr | None):
                value: Any = getattr(self, name)
                found[name] = value.get_secret_value() if isinstance(value, SecretStr) else None
        return found


def _is_weak(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.startswith(DEV_SECRET_MARKER)


class ServiceSettings(SuiteSettings):
    """Settings of a service that owns a database schema."""

    database_url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
        # Required outside development and test; postgresql:// and sslmode= are translated.
        description="SQLAlchemy URL (postgresql+asyncpg://...) of the suite's database.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections kept per process.")
    db_max_overflow: int = Field(default=10, ge=0, le=200, description="Extra connections under load.")
    db_pool_pre_ping: bool = Field(
        default=True,
        description=(
            "Check each pooled connection at checkout: one the server closed is replaced without a round trip,"
            " one idle for db_pool_ping_idle_seconds or more is pinged first. Off skips both (a connection that"
            " died in the pool then fails one request with a 503)."
        ),
    )
    db_pool_ping_idle_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description=(
            "Ping a pooled connection before use when it sat idle this long (0: ping on every checkout)."
            " One used a moment ago is not pinged: that ping costs three round trips."
        ),
    )
    db_pool_recycle_seconds: int = Field(default=1800, ge=30, description="Replace pooled connections older than this.")
    db_statement_timeout_ms: int = Field(
        default=15_000, ge=100, description="PostgreSQL statement_timeout of every connection."
    )
    audit_signing_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "audit-checkpoint-signing-key"),
        description="Secret (32+ random bytes) from which the Ed25519 audit-checkpoint key is derived.",
    )
    audit_checkpoint_every: int = Field(
        default=100, ge=1, description="Write a signed checkpoint after this many audit entries."
    )
    audit_checkpoint_file: str | None = Field(
        default=None,
        description="Optional append-only file (WORM mount) that receives a copy of every checkpoint.",
    )
    client_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "service-client-secret"),
        description="This service's OAuth2 client secret (its client id is the service name).",
    )
    follow_revocations: bool = Field(
        default=False,
        description=(
            "Follow identity's revocation feed so this service refuses a revoked session's token even when"
            " called without the gateway (defence in depth; on in the production manifests)."
        ),
    )
    revocation_poll_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often the revocation feed is read (the revocation bound)."
    )
    permission_cache_seconds: float = Field(
        default=3.0, ge=0, le=30, description="How long a permission decision is reused (revocation bound)."
    )
    outbox_poll_seconds: float = Field(default=1.0, gt=0, description="How often the outbox looks for due messages.")
    outbox_max_attempts: int = Field(default=12, ge=1, description="Attempts before a message is marked dead.")
    outbox_backoff_base_seconds: float = Field(default=0.5, gt=0, description="First retry delay (doubles).")
    outbox_backoff_max_seconds: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    outbox_enabled: bool = Field(default=True, description="Run the outbox delivery worker in this process.")

    @field_validator("database_url", mode="after")
    @classmethod
    def _asyncpg_dialect(cls, value: SecretStr) -> SecretStr:
        return SecretStr(asyncpg_url(value.get_secret_value()))

    @model_validator(mode="after")
    def _require_database_url(self) -> ServiceSettings:
        """Outside development and test the database is named explicitly, never the localhost default."""
        if not self.environment.allows_dev_secrets and "database_url" not in self.model_fields_set:
            prefix = str(type(self).model_config.get("env_prefix", "")).upper()
            raise InsecureSettingsError(
                f"{self.environment.value} needs {prefix}DATABASE_URL (or SUITE_DATABASE_URL): none was given"
            )
        return self

    @property
    def schema_name(self) -> str:
        return self.service_name

    @property
    def client_id(self) -> str:
        return self.service_name
