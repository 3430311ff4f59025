from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings

STRONG = "k3J9x-long-random-production-secret-value"


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "demo"
    api_secret: SecretStr = SecretStr("dev-insecure-demo")
    optional_secret: SecretStr | None = None


def strong(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "audit_signing_key": SecretStr(STRONG),
        "client_secret": SecretStr(STRONG),
        "api_secret": SecretStr(STRONG),
        "optional_secret": SecretStr(STRONG),
    }
    values.update(extra)
    return values


def test_development_accepts_the_development_defaults() -> None:
    settings = DemoSettings(environment="development")
    assert settings.api_secret.get_secret_value().startswith("dev-insecure-")


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_deployed_environments_refuse_default_secrets(environment: str) -> None:
    with pytest.raises(ValidationError, match="api_secret"):
        DemoSettings(environment=environment, **strong(api_secret=SecretStr("dev-insecure-demo")))


def test_production_refuses_missing_and_blank_secrets() -> None:
    with pytest.raises(ValidationError, match="optional_secret"):
        DemoSettings(environment="production", **strong(optional_secret=None))
    with pytest.raises(ValidationError, match="client_secret"):
        DemoSettings(environment="production", **strong(client_secret=SecretStr("   ")))


def test_production_starts_with_real_secrets() -> None:
    settings = DemoSettings(environment="production", **strong())
    assert settings.environment == "production"
    assert STRONG not in repr(settings)  # secrets never print


def test_service_prefix_wins_over_the_suite_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUITE_DATABASE_URL", "postgresql+asyncpg://suite@db/suite")
    monkeypatch.setenv("SUITE_GATEWAY_URL", "http://gw:8000")
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql+asyncpg://demo@db/suite")
    settings = DemoSettings()
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://demo@db/suite"
    assert settings.gateway_url == "http://gw:8000"
    assert settings.schema_name == "demo"
    assert settings.client_id == "demo"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DB_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="db_pool_size"):
        DemoSettings()
