"""Settings of the identity service (environment prefix `IDENTITY_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import DEV_SECRET_MARKER, InsecureSettingsError, ServiceSettings

#: Every scope a client can hold (docs/contracts.md, "Scopes"): checked by the service that owns the route
#: with kit's ``RequireScope``. A client can only be given scopes from this list.
SCOPES: dict[str, str] = {
    "identity:revocations": "identity's revocation feed (GET internal/revocations)",
    "identity:accounts": "freeze an account or revoke its sessions (internal/accounts/{id}/...)",
    "identity:notify": "notify a customer on their verified channels (internal/accounts/{id}/notifications)",
    "identity:risk_level": "set an account's risk level (internal/accounts/{id}/risk-level)",
    "identity:step_up": "consume a customer's step-up for an action (internal/step-up/consume)",
    "identity:maintenance": "identity's purge routes (internal/login-log/purge, internal/notifications/purge)",
    "risk:score": "score transactions and logins (risk internal/transactions/score, internal/logins/score)",
    "risk:labels": "label transactions as fraud or genuine (risk internal/labels)",
    "risk:lists": "write risk's block and allow lists (risk internal/lists/...)",
    "risk:read": "read risk's decisions (risk internal/decisions)",
    "risk:signals": "report staff behaviour to risk (risk internal/staff-events)",
    "incidents:report": "report to incidents (incidents internal/reports)",
    "audit:verify": "verify a service's audit chain (internal/audit/verification)",
    "audit:sample": "read the records sampling audits check (permissions' grants, the vault's unmasked reads)",
}

#: The suite's own service clients (client id = service name) and the scopes each holds: only what it
#: calls (issue 13 item 9). Every service may follow the revocation feed; the gateway does nothing else.
SERVICE_CLIENT_SCOPES: dict[str, tuple[str, ...]] = {
    "identity": ("identity:maintenance", "risk:score", "incidents:report"),
    "permissions": ("identity:revocations", "identity:notify", "risk:signals"),
    "vault": ("identity:revocations", "identity:notify", "risk:signals"),
    "risk": (
        "identity:revocations",
        "identity:accounts",
        "identity:notify",
        "identity:risk_level",
        "identity:step_up",
        "incidents:report",
    ),
    "incidents": (
        "identity:revocations",
        "identity:accounts",
        "identity:notify",
        "risk:labels",
        "risk:lists",
        "risk:read",
        "audit:verify",
        "audit:sample",
    ),
    "gateway": ("identity:revocations",),
}

#: The services that get OAuth2 clients (client id = service name).
SERVICE_CLIENTS = tuple(SERVICE_CLIENT_SCOPES)

#: The development API client ``make run`` creates for the bank's core system (outside the suite).
CORE_BANKING_CLIENT = "core-banking"
CORE_BANKING_SCOPES = ("risk:score", "risk:labels", "identity:step_up")


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "identity"
    #: Read only where the suite's clients are registered automatically (development and test):
    #: a deployed environment neither needs nor checks it.
    development_only_secrets: ClassVar[frozenset[str]] = frozenset({"dev_service_client_secret"})

    # --- keys -------------------------------------------------------------
    data_encryption_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "identity-data-encryption-key"),
        description=(
            "Secret (32+ random bytes) from which the AES-256-GCM keys for TOTP secrets, token signing keys, "
            "notification bodies and staff work emails, and the HMAC key of the lookup indexes, are derived "
            "(HKDF). Customers' personal data is in the vault, not under this key."
        ),
    )
    dev_service_client_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET_MARKER + "service-client-secret"),
        # Not read, and not required, in staging or production (development_only_secrets).
        description="Secret of the service clients registered automatically in development and test.",
    )
    register_dev_clients: bool = Field(
        default=True,
        description="Register the suite's service clients at start-up (development and test environments only).",
    )

    # --- passwords --------------------------------------------------------
    argon2_memory_kib: int = Field(default=19_456, ge=19_456, description="argon2id memory cost (OWASP: 19 MiB).")
    argon2_time_cost: int = Field(default=2, ge=2, description="argon2id iterations.")
    argon2_parallelism: int = Field(default=1, ge=1, le=16, description="argon2id lanes (threads) per hash.")
    password_min_length: int = Field(default=10, ge=8, le=128, description="Shortest password accepted.")
    password_max_length: int = Field(
        default=128, ge=16, le=1024, description="Longest password accepted (bounds the hashing work)."
    )
    password_require_classes: tuple[str, ...] = Field(
        default=("upper", "lower", "digit", "special"),
        description="Character classes a password must contain (upper, lower, digit, special).",
    )
    password_history: int = Field(default=5, ge=0, le=50, description="The last N passwords cannot be reused.")
    password_max_age_days: int | None = Field(
        default=None, ge=1, description="Optional expiry (the bank seed says 90; NIST 800-63B says none)."
    )
    password_min_zxcvbn_score: int = Field(default=3, ge=0, le=4, description="Minimum zxcvbn strength (0-4).")

    # --- lockout and login ------------------------------------------------
    lockout_threshold: int = Field(
        default=3, ge=1, description="Consecutive failures allowed; the next one locks the account."
    )
    lockout_base_seconds: int = Field(default=900, ge=1, description="First lock duration; doubles per lockout.")
    lockout_max_seconds: int = Field(default=86_400, ge=1, description="Longest lock duration.")
    login_challenge_ttl_seconds: int = Field(
        default=300, ge=30, le=1800, description="How long a password-checked login waits for its second factor."
    )
    login_log_retention_days: int = Field(default=180, ge=90, description="Login log retention (at least 90 days).")
    login_log_archive_dir: str | None = Field(
        default=".data/archive",
        description="Purged login-log entries are first written here (JSON lines); unset: no archive.",
    )
    trust_forwarded_for: bool = Field(
        default=True, description="Take the client IP from the gateway's X-Forwarded-For (last hop)."
    )
    odd_hours_utc: tuple[int, int] = Field(
        default=(17, 22), description="UTC hours [start, end) counted as odd (01:00-06:00 China time)."
    )
    impossible_travel_kmh: float = Field(
        default=900.0, gt=0, description="Speed between two logins' places above which travel is impossible."
    )
    recent_failures_window_minutes: int = Field(default=60, ge=1, description="Window of the recent-failures signal.")
    recent_failures_threshold: int = Field(
        default=3, ge=1, description="Failures in the window that raise the recent-failures signal."
    )

    staff_second_factor_always: bool = Field(
        default=True,
        description=(
            "Staff who have a second factor sign in with it every time, whatever risk says (their sessions reach "
            "customers' data and approvals; one with none yet signs in at aal1 to enrol it); off, a staff login "
            "risk allows is password-only (aal1)."
        ),
    )

    # --- risk -------------------------------------------------------------
    risk_scoring_enabled: bool = Field(
        default=True, description="Ask risk to score logins; when it cannot answer the login is challenged."
    )
    risk_score_path: str = Field(
        default="/v1/risk/internal/logins/score", description="Risk's login-scoring endpoint (through the gateway)."
    )
    risk_timeout_seconds: float = Field(
        default=1.5, gt=0, le=10, description="How long a login waits for risk before failing closed."
    )

    # --- tokens -----------------------------------------------------------
    access_token_ttl_seconds: int = Field(default=600, ge=300, le=900, description="Access token lifetime (5-15 min).")
    service_token_ttl_seconds: int = Field(
        default=900, ge=300, le=3600, description="Lifetime of client-credentials tokens."
    )
    refresh_token_ttl_seconds: int = Field(default=86_400 * 7, ge=600, description="Idle lifetime of a refresh token.")
    session_absolute_ttl_seconds: int = Field(default=86_400 * 30, ge=3600, description="Absolute session lifetime.")
    signing_key_overlap_seconds: int = Field(
        default=3600, ge=900, description="How long a rotated-out key stays in the JWKS (>= access token TTL)."
    )
    key_cache_seconds: float = Field(default=10.0, ge=0, le=300, description="How often replicas reload the keys.")

    # --- second factors ---------------------------------------------------
    totp_issuer: str = Field(default="Bank Suite", description="Issuer shown by authenticator apps.")
    otp_ttl_seconds: int = Field(default=300, ge=60, le=900, description="Lifetime of an SMS/email code.")
    otp_max_attempts: int = Field(default=5, ge=1, le=10, description="Wrong tries that burn an SMS/email code.")
    otp_length: int = Field(default=6, ge=6, le=10, description="Digits of an SMS/email code.")
    code_sends_per_account_per_day: int = Field(
        default=20,
        ge=3,
        le=200,
        description=(
            "SMS/email codes sent to one account in 24 hours at most (SMS pumping; per-IP limits are the gateway's)."
        ),
    )
    recovery_code_count: int = Field(default=10, ge=5, le=20, description="Recovery codes issued at a time.")
    step_up_ttl_seconds: int = Field(default=300, ge=60, le=900, description="How long a step-up stays usable.")
    factor_change_fresh_login_seconds: int = Field(
        default=300,
        ge=60,
        le=900,
        description=(
            "A session that logged in at aal2 or above this recently may add or remove a second factor without "
            "the current password and a step-up."
        ),
    )
    webauthn_rp_id: str = Field(default="localhost", description="WebAuthn relying-party id (the banking domain).")
    webauthn_rp_name: str = Field(default="Bank Suite", description="Relying-party name shown by authenticators.")
    webauthn_origins: tuple[str, ...] = Field(
        default=("http://localhost:8000",), description="Origins (web app, app associations) WebAuthn accepts."
    )
    webauthn_aal3_aaguids: tuple[str, ...] = Field(
        default=(),
        description=(
            "AAGUIDs of hardware authenticators whose attested, device-bound passkeys give aal3 when they verify "
            "the user (NIST SP 800-63B). Empty: every passkey gives aal2."
        ),
    )
    webauthn_attestation_roots: tuple[str, ...] = Field(
        default=(),
        description=(
            "PEM files of the vendors' attestation root certificates an aal3 passkey's attestation must chain to "
            "(without them no passkey gets aal3: a self-made attestation proves nothing)."
        ),
    )

    # --- notifications ----------------------------------------------------
    notification_webhook_url: str | None = Field(
        default=None,
        description="Webhook of the SMS/email provider; unset keeps notifications in the development sink.",
    )
    notification_poll_seconds: float = Field(default=1.0, gt=0, description="Delivery loop period when idle.")
    notification_retention_days: int = Field(
        default=30,
        ge=1,
        le=400,
        description="Finished notifications (they hold old contacts and message bodies) are purged after this.",
    )
    registration_shred_after_seconds: float = Field(
        default=900.0,
        ge=60,
        description=(
            "A registration whose personal data reached the vault but whose account was never committed "
            "(the process died in between) has that data shredded after this delay."
        ),
    )

    @model_validator(mode="after")
    def _refuse_a_local_relying_party(self) -> IdentitySettings:
        """Staging and production refuse a localhost WebAuthn relying party (issue 13 item 16): passkeys made
        for it would be bound to no real domain."""
        if self.environment.allows_dev_secrets:
            return self
        local = ("localhost", "127.0.0.1", "[::1]")
        origin_hosts = [o.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0] for o in self.webauthn_origins]
        if self.webauthn_rp_id in local or any(host in local for host in origin_hosts):
            raise InsecureSettingsError(
                f"{self.environment.value} refuses a localhost WebAuthn relying party or origin "
                "(set IDENTITY_WEBAUTHN_RP_ID and IDENTITY_WEBAUTHN_ORIGINS)"
            )
        return self
