"""Retention periods as settings, never shorter than the law's minimums outside development.

The manual sets minimums (M2.4, M4.3, M7.4): the login log is kept at least
90 days, operation logs at least 6 months, audit records and incident files
at least 5 years. A service declares its periods as settings and checks them
with :func:`check_retention` in a model validator: in development and test a
shorter period is accepted (tests purge on short clocks); in staging and
production the settings refuse to load, so a misconfigured purge job can
never delete what must still be kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kit.settings import Environment, InsecureSettingsError

#: The minimums, in days.
LOGIN_LOG_MIN_DAYS = 90
OPERATION_LOG_MIN_DAYS = 183  # six months
AUDIT_RECORD_MIN_DAYS = 1827  # five years, leap days included


@dataclass(frozen=True, slots=True)
class RetentionPeriod:
    days: int
    minimum_days: int


class RetentionTooShort(InsecureSettingsError):
    """A retention period below its minimum outside development and test."""


def check_retention(environment: Environment, periods: Mapping[str, RetentionPeriod]) -> None:
    """Raise :class:`RetentionTooShort` naming every period below its minimum (except in development/test)."""
    bad = [name for name, period in periods.items() if period.days < 1]
    if bad:
        raise RetentionTooShort(f"retention periods must be positive: {', '.join(sorted(bad))}")
    if environment.allows_dev_secrets:
        return
    short = [
        f"{name} ({period.days} < {period.minimum_days} days)"
        for name, period in periods.items()
        if period.days < period.minimum_days
    ]
    if short:
        raise RetentionTooShort(f"{environment.value} refuses retention periods below the minimum: {', '.join(short)}")


@dataclass(frozen=True, slots=True)
class Archive:
    path: Path
    sha256: str
    rows: int


def row_dict(row: Any) -> dict[str, Any]:
    """A mapped object's or a result row's columns as a dict (for an archive line)."""
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        return dict(mapping)
    table = row.__table__
    return {column.key: getattr(row, column.key) for column in table.columns}


def write_archive(
    directory: Path, dataset: str, rows: Iterable[Mapping[str, Any]], *, now: datetime | None = None
) -> Archive:
    """Write rows as JSON lines to a new file before they are purged; the digest goes into the purge's record.

    The file is created exclusively (never overwrites an archive), readable by
    the owner only, and flushed to disk before the caller deletes anything.
    """
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dataset}-{stamp}.jsonl"
    digest = hashlib.sha256()
    count = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        for row in rows:
            line = json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode() + b"\n"
            handle.write(line)
            digest.update(line)
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    return Archive(path=path, sha256=digest.hexdigest(), rows=count)
