from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from kit.settings import InsecureSettingsError, ServiceSettings

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
        "database_url": SecretStr("postgresql+asyncpg://suite_demo:pw@db/suite"),
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


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_deployed_environments_need_a_database_url(environment: str) -> None:
    values = strong()
    del values["database_url"]
    with pytest.raises((ValidationError, InsecureSettingsError), match="DEMO_DATABASE_URL"):
        DemoSettings(environment=environment, **values)


def test_development_falls_back_to_the_local_database() -> None:
    assert "127.0.0.1" in DemoSettings(environment="development").database_url.get_secret_value()


def test_libpq_urls_with_sslmode_become_asyncpg_urls() -> None:
    settings = DemoSettings(
        environment="production",
        **strong(database_url=SecretStr("postgresql://suite_demo:pw@suite-db-rw:5432/suite?sslmode=verify-full")),
    )
    assert settings.database_url.get_secret_value() == (
        "postgresql+asyncpg://suite_demo:pw@suite-db-rw:5432/suite?ssl=verify-full"
    )


def test_secrets_are_read_from_mounted_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "DEMO_API_SECRET").write_text(STRONG + "\n")
    (tmp_path / "DEMO_DATABASE_URL").write_text("postgresql+asyncpg://suite_demo:pw@db/suite")
    (tmp_path / "SUITE_AUDIT_SIGNING_KEY").write_text(STRONG)
    monkeypatch.setenv("SUITE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_CLIENT_SECRET", STRONG)
    monkeypatch.setenv("DEMO_OPTIONAL_SECRET", STRONG)
    settings = DemoSettings(environment="production")
    assert settings.api_secret.get_secret_value() == STRONG  # the file, stripped
    assert settings.audit_signing_key.get_secret_value() == STRONG  # suite-wide name as a file
    assert settings.database_url.get_secret_value().endswith("@db/suite")


def test_an_environment_variable_wins_over_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "DEMO_API_SECRET").write_text("from-the-file")
    monkeypatch.setenv("SUITE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("DEMO_API_SECRET", "from-the-environment")
    assert DemoSettings().api_secret.get_secret_value() == "from-the-environment"


def test_a_missing_secrets_directory_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SUITE_SECRETS_DIR", str(tmp_path / "absent"))
    assert DemoSettings().api_secret.get_secret_value() == "dev-insecure-demo"


class DevOnlySettings(DemoSettings):
    development_only_secrets: ClassVar[frozenset[str]] = frozenset({"dev_only_secret"})
    dev_only_secret: SecretStr = SecretStr("dev-insecure-only-for-development")


def test_a_development_only_secret_is_not_required_in_production() -> None:
    settings = DevOnlySettings(environment="production", **strong())
    assert settings.environment == "production"


def test_identity_runs_in_production_without_the_development_client_secret() -> None:
    from services.identity.config import IdentitySettings

    settings = IdentitySettings(
        environment="production",
        database_url=SecretStr("postgresql+asyncpg://suite_identity:pw@db/suite"),
        data_encryption_key=SecretStr(STRONG),
        audit_signing_key=SecretStr(STRONG),
        client_secret=SecretStr(STRONG),
        webauthn_rp_id="bank.example",
        webauthn_origins=("https://bank.example",),
    )
    assert settings.dev_service_client_secret.get_secret_value().startswith("dev-insecure-")
