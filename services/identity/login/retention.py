"""Retention: login-log entries older than ``login_log_retention_days`` (>= 90) are purged, and so are
login challenges that expired more than a day ago (completed or abandoned: they only matter while
they can still be answered) and finished notifications older than ``notification_retention_days``.

Before a batch of login-log entries is deleted it is written to an archive file in
``login_log_archive_dir`` (JSON lines, see :func:`kit.retention.write_archive`), so the purge
never loses an entry that was not exported first."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.retention import row_dict, write_archive
from services.identity.models import LoginAttempt, LoginChallenge, Notification

#: How long an expired login challenge is kept before the purge removes it.
CHALLENGE_KEPT_AFTER_EXPIRY = timedelta(days=1)

logger = logging.getLogger("identity.retention")


async def purge_login_log(
    session: AsyncSession, retention_days: int, batch: int = 10_000, *, archive_dir: Path | None = None
) -> int:
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    total = 0
    part = 0
    while True:
        ids = (
            (
                await session.execute(
                    LoginAttempt.__table__.select()
                    .with_only_columns(LoginAttempt.id)
                    .where(LoginAttempt.occurred_at < cutoff)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            return total
        if archive_dir is not None:
            rows = (await session.execute(select(LoginAttempt).where(LoginAttempt.id.in_(ids)))).scalars().all()
            part += 1
            await asyncio.to_thread(
                write_archive, archive_dir, f"identity-login-log-{part}", [row_dict(row) for row in rows]
            )
        await session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(ids)))
        total += len(ids)


async def purge_expired_challenges(session: AsyncSession) -> int:
    cutoff = datetime.now(UTC) - CHALLENGE_KEPT_AFTER_EXPIRY
    result = await session.execute(
        delete(LoginChallenge).where(LoginChallenge.expires_at < cutoff).returning(LoginChallenge.id_hash)
    )
    return len(result.all())


async def purge_notifications(session: AsyncSession, retention_days: int) -> int:
    """Notification rows older than the retention, once finished (delivered, in the sink or given up): they
    hold an old contact (the previous one told of a change) and message bodies (issue 13 item 14)."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    result = await session.execute(
        delete(Notification)
        .where(Notification.created_at < cutoff, Notification.status != "pending")
        .returning(Notification.id)
    )
    return len(result.all())


async def purge_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    retention_days: int,
    every_seconds: float,
    archive_dir: Path | None = None,
    notification_retention_days: int = 30,
) -> None:
    """The daily purge job (every replica may run it; deletes are idempotent)."""
    while True:
        try:
            async with sessionmaker() as session:
                deleted = await purge_login_log(session, retention_days, archive_dir=archive_dir)
                await purge_expired_challenges(session)
                await purge_notifications(session, notification_retention_days)
                await session.commit()
            if deleted:
                logger.info("login log purge removed %d entries", deleted)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("login log purge failed")
        await asyncio.sleep(every_seconds)


def login_log_archive(configured: str | None) -> Path | None:
    """The archive directory of the login-log purge (None: the purge writes no archive)."""
    return Path(configured) if configured else None
