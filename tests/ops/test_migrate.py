"""The migration command: waits a bounded time for the database, refuses outside development what it cannot do."""

from __future__ import annotations

import pytest

from ops.migrate import main


def test_an_unreachable_database_ends_the_job_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/suite")
    monkeypatch.setenv("SUITE_ENVIRONMENT", "production")
    assert main(["--wait-seconds", "0", "--managed-roles", "identity"]) == 1
    assert "did not accept connections" in capsys.readouterr().err


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/suite")
    monkeypatch.setenv("SUITE_ENVIRONMENT", "prod")
    assert main(["identity"]) == 2
