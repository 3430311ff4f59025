"""Retention periods refuse values below the minimums outside development; archives are written before purges."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit.retention import (
    AUDIT_RECORD_MIN_DAYS,
    LOGIN_LOG_MIN_DAYS,
    OPERATION_LOG_MIN_DAYS,
    RetentionPeriod,
    RetentionTooShort,
    check_retention,
    write_archive,
)
from kit.settings import Environment


def test_the_minimums_are_the_manuals() -> None:
    assert LOGIN_LOG_MIN_DAYS == 90
    assert OPERATION_LOG_MIN_DAYS >= 182
    assert AUDIT_RECORD_MIN_DAYS >= 5 * 365 + 1


@pytest.mark.parametrize("environment", [Environment.staging, Environment.production])
def test_shorter_periods_are_refused_when_deployed(environment: Environment) -> None:
    with pytest.raises(RetentionTooShort, match="login_log_days"):
        check_retention(environment, {"login_log_days": RetentionPeriod(30, LOGIN_LOG_MIN_DAYS)})
    check_retention(environment, {"login_log_days": RetentionPeriod(90, LOGIN_LOG_MIN_DAYS)})


def test_development_may_use_short_periods_but_never_zero() -> None:
    check_retention(Environment.development, {"audit": RetentionPeriod(1, AUDIT_RECORD_MIN_DAYS)})
    with pytest.raises(RetentionTooShort, match="positive"):
        check_retention(Environment.development, {"audit": RetentionPeriod(0, AUDIT_RECORD_MIN_DAYS)})


def test_an_archive_is_written_once_with_its_digest(tmp_path: Path) -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    rows = [{"id": 1, "at": now, "text": "审计"}, {"id": 2, "at": now, "text": "x"}]
    archive = write_archive(tmp_path / "archive", "demo", rows, now=now)
    data = archive.path.read_bytes()
    assert archive.rows == 2
    assert hashlib.sha256(data).hexdigest() == archive.sha256
    assert [json.loads(line)["text"] for line in data.decode().splitlines()] == ["审计", "x"]
    assert stat.S_IMODE(archive.path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_archive(tmp_path / "archive", "demo", rows, now=now)
