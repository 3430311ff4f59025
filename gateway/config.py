"""Gateway settings (environment prefix ``GATEWAY_``; suite-wide values also read ``SUITE_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import DEV_SECRET_MARKER, Environment, SuiteSettings

SERVICES = ("identity", "permissions", "vault", "risk", "incidents")

#: The policy files every service keeps next to the gateway (``gateway/routes/<service>.toml``).
DEFAULT_ROUTES_DIR = Path(__file__).parent / "routes"


class GatewaySettings(SuiteSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "gateway"

    # --- upstreams -----------------------------------------------------------------
    identity_url: str = Field(default="http://127.0.0.1:8001", description="Upstream of /v1/identity.")
    permissions_url: str = Field(default="http://127.0.0.1:8002", description="Upstream of /v1/permissions.")
    vault_url: str = Field(default="http://127.0.0.1:8003", description="Upstream of /v1/vault.")
    risk_url: str = Field(default="http://127.0.0.1:8004", description="Upstream of /v1/risk.")
    incidents_url: str = Field(default="http://127.0.0.1:8005", description="Upstream of /v1/incidents.")
    upstream_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Deadline of one proxied request, all attempts included."
    )
    upstream_try_timeout_seconds: float = Field(default=5.0, gt=0, description="Deadline of one attempt.")
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_timeouts: dict[str, float] = Field(
        default_factory=dict, description="Per-upstream override of upstream_timeout_seconds, e.g. {'risk': 2.0}."
    )
    upstream_max_connections: int = Field(default=200, ge=1, description="Connections per upstream at most.")
    upstream_retries: int = Field(default=2, ge=0, le=5, description="Extra attempts for idempotent methods.")
    retry_budget_ratio: float = Field(
        default=0.2, ge=0, le=1, description="Retries allowed per upstream as a share of its requests."
    )
    retry_budget_min_per_second: float = Field(default=3.0, ge=0, description="Retries always allowed per second.")
    breaker_failure_threshold: int = Field(default=5, ge=1, description="Consecutive failures that open a circuit.")
    breaker_open_seconds: float = Field(default=5.0, gt=0, description="How long an open circuit fails fast.")
    breaker_half_open_probes: int = Field(default=1, ge=1, description="Concurrent probes while half-open.")

    # --- authentication ------------------------------------------------------------------
    jwks_upstream_path: str = Field(
        default="/.well-known/jwks.json", description="identity's JWKS, on the identity upstream."
    )
    jwks_refresh_seconds: float = Field(default=300.0, gt=0, description="Background JWKS refresh (key rotation).")
    jwks_refetch_interval_seconds: float = Field(
        default=1.0, gt=0, description="Minimum spacing of refetches on an unknown key id (doubles on failure)."
    )
    token_cache_size: int = Field(
        default=10_000, ge=0, description="Verified tokens remembered (signature checked once per token; 0: off)."
    )
    client_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "service-client-secret"),
        description="The gateway's OAuth2 client secret at identity (client id `gateway`).",
    )
    token_upstream_path: str = Field(default="/public/oauth/token", description="identity's token endpoint.")
    revocation_upstream_path: str = Field(default="/internal/revocations", description="identity's revocation feed.")
    revocation_poll_seconds: float = Field(
        default=2.0, gt=0, description="Feed polling period: the bound on how long a revoked session still works."
    )
    revocation_max_staleness_seconds: float = Field(
        default=30.0,
        gt=0,
        description="When the feed could not be read for this long, session tokens are refused (fail closed).",
    )

    # --- routing and protection ---------------------------------------------------------
    routes_dir: Path = Field(default=DEFAULT_ROUTES_DIR, description="Directory of the route policy files.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of load balancers whose X-Forwarded-For is believed (empty: trust none).",
    )
    behind_proxy: bool = Field(
        default=False,
        description=(
            "The gateway is reached through an ingress or load balancer; outside development it then "
            "refuses to start with trusted_proxies empty (every client would share the proxy's address)."
        ),
    )
    max_body_bytes: int = Field(default=1_048_576, ge=0, description="Largest request body (413 above).")
    max_header_bytes: int = Field(default=16_384, ge=1024, description="Largest request header block (431 above).")
    cors_allow_origins: list[str] = Field(
        default_factory=list, description="Web banking origins allowed by CORS (exact match; empty: none)."
    )
    hsts_max_age_seconds: int = Field(default=31_536_000, ge=0)
    rate_limit_storage: str = Field(
        default="memory://",
        description="limits storage URI: memory:// (per process) or async+redis://host:port/db (shared).",
    )
    rate_limit_key_prefix: str = Field(default="gw", description="Prefix of the counters in shared storage.")
    rate_limit_ip: str = Field(default="100/second", description="Per client IP, every request.")
    rate_limit_subject: str = Field(default="50/second", description="Per authenticated subject.")
    rate_limit_classes: dict[str, str] = Field(
        default_factory=lambda: {
            "login": "10/minute",
            "otp": "5/minute",
            "register": "10/minute",
            "token": "120/minute",
        },
        description=(
            "Per route class, per client IP and per subject: login (password guessing), otp (sending or "
            "checking a one-time code), register (sign-up and its contact checks), token (the OAuth2 token "
            "endpoint services use). A class left out has no limit of its own."
        ),
    )
    rate_limit_storage_retry_seconds: float = Field(
        default=5.0, gt=0, description="While shared storage is down, counters are per process; retried this often."
    )

    # --- observability -------------------------------------------------------------------
    access_log: bool = Field(default=True, description="One JSON line per request (no tokens, no query strings).")
    openapi_cache_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _refuse_blind_proxy(self) -> GatewaySettings:
        if self.behind_proxy and not self.trusted_proxies and self.environment is not Environment.development:
            raise ValueError(
                f"{self.environment.value}: GATEWAY_BEHIND_PROXY is true but GATEWAY_TRUSTED_PROXIES is empty: "
                "per-address rate limits and login records would see only the proxy's address"
            )
        return self

    def upstreams(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_url").rstrip("/") for name in SERVICES}

    def timeout_for(self, upstream: str) -> float:
        return self.upstream_timeouts.get(upstream, self.upstream_timeout_seconds)
