"""The login-log purge writes every entry it deletes to an archive first, and keeps the 90-day minimum."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import func, select

from services.identity.config import IdentitySettings
from services.identity.login.retention import purge_login_log
from services.identity.models import LoginAttempt


def archived(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(directory.glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_the_retention_is_never_below_90_days() -> None:
    with pytest.raises(ValidationError):
        IdentitySettings(environment="test", login_log_retention_days=30)


async def test_purged_entries_are_archived_first(identity_app: FastAPI, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    now = datetime.now(UTC)
    async with identity_app.state.database.sessionmaker() as session:
        for age in (200, 190, 10):
            session.add(
                LoginAttempt(
                    occurred_at=now - timedelta(days=age),
                    identifier_index=marker,
                    method="pwd",
                    result="failure",
                    reason="test",
                    failed_count=0,
                    signals=[],
                )
            )
        await session.commit()
    async with identity_app.state.database.sessionmaker() as session:
        deleted = await purge_login_log(session, 180, batch=1, archive_dir=tmp_path)
        await session.commit()
        left = await session.scalar(select(func.count()).where(LoginAttempt.identifier_index == marker))
    assert deleted >= 2
    assert left == 1
    lines = [line for line in archived(tmp_path) if line["identifier_index"] == marker]
    assert len(lines) == 2
    assert {line["reason"] for line in lines} == {"test"}
