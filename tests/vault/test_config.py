"""Settings: deployed environments refuse the development keys."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from kit.settings import InsecureSettingsError
from services.vault.config import VaultSettings


def test_production_refuses_development_keys() -> None:
    with pytest.raises((InsecureSettingsError, ValidationError)) as info:
        VaultSettings(environment="production", database_url=SecretStr("postgresql+asyncpg://vault@db/suite"))
    for name in ("root_key", "blind_index_key", "backup_key"):
        assert name in str(info.value)


def test_production_starts_with_real_keys() -> None:
    def key(name: str) -> SecretStr:
        return SecretStr(f"{name}-k3y-m4t3r14l-0f-3n0ugh-l3ngth-xyz")

    settings = VaultSettings(
        environment="production",
        database_url=SecretStr("postgresql+asyncpg://vault@db/suite"),
        root_key=key("root_key"),
        blind_index_key=key("blind_index_key"),
        backup_key=key("backup_key"),
        audit_signing_key=key("audit_signing_key"),
        client_secret=key("client_secret"),
        shred_ledger_file="/ledger/shred.ledger",
    )
    assert settings.root_key.get_secret_value().startswith("root_key")
    assert "k3y" not in repr(settings)


def test_production_refuses_to_start_without_the_shred_ledger() -> None:
    def key(name: str) -> SecretStr:
        return SecretStr(f"{name}-k3y-m4t3r14l-0f-3n0ugh-l3ngth-xyz")

    with pytest.raises(ValidationError, match="SHRED_LEDGER"):
        VaultSettings(
            environment="production",
            database_url=SecretStr("postgresql+asyncpg://vault@db/suite"),
            root_key=key("root_key"),
            blind_index_key=key("blind_index_key"),
            backup_key=key("backup_key"),
            audit_signing_key=key("audit_signing_key"),
            client_secret=key("client_secret"),
        )


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValidationError):
        VaultSettings(environment="test", records_algorithm="des-cbc")
