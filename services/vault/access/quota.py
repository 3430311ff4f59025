"""Per-reader quotas: how many records one staff member reads per window, and the alert to risk.

The per-request bulk limit (``bulk_read_threshold``) alone lets a reader
collect a customer base ten records at a time. Every staff read adds its
record count to the reader's usage of the current window (one atomic upsert
in the read's own transaction, so a refused read counts nothing); a read that
takes the reader past ``read_quota_records`` needs an approved request. When
the usage reaches ``read_quota_alert_ratio`` of the quota, risk is told once
per reader and window (``POST /v1/risk/internal/staff-events``, kind
``quota_near``) through the vault's outbox, in a transaction of its own so the
alert is sent even when the read itself is then refused.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.vault.config import VaultSettings
from services.vault.models import ReadQuotaAlert, ReadUsage, outbox

#: Where risk receives staff-behaviour signals (docs/contracts.md, scope ``risk:signals``).
STAFF_EVENTS_PATH = "/v1/risk/internal/staff-events"


@dataclass(frozen=True, slots=True)
class Usage:
    reader: str
    window_start: datetime
    records: int
    quota: int

    @property
    def over(self) -> bool:
        return self.records > self.quota

    def reason(self) -> str:
        return f"the reader's quota of {self.quota} records per window is exceeded ({self.records})"


def window_start(now: datetime, seconds: int) -> datetime:
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.floor(epoch / seconds) * seconds, UTC)


async def consume(
    session: AsyncSession, settings: VaultSettings, reader: str, records: int, now: datetime | None = None
) -> Usage:
    """Add ``records`` to the reader's usage of the current window; returns the usage after it."""
    start = window_start(now or datetime.now(UTC), settings.read_quota_window_seconds)
    statement = pg_insert(ReadUsage).values(reader=reader, window_start=start, records=records)
    total = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["reader", "window_start"], set_={"records": ReadUsage.records + records}
        ).returning(ReadUsage.records)
    )
    return Usage(reader, start, int(total or 0), settings.read_quota_records)


def near(usage: Usage, settings: VaultSettings) -> bool:
    return usage.records >= math.ceil(settings.read_quota_alert_ratio * usage.quota)


async def alert_if_near(sessionmaker: async_sessionmaker[AsyncSession], settings: VaultSettings, usage: Usage) -> bool:
    """Tell risk (once per reader and window) that the reader approaches or passed the quota."""
    if not near(usage, settings):
        return False
    async with sessionmaker() as session:
        inserted = await session.scalar(
            pg_insert(ReadQuotaAlert)
            .values(
                reader=usage.reader,
                window_start=usage.window_start,
                records=usage.records,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["reader", "window_start"])
            .returning(ReadQuotaAlert.reader)
        )
        if inserted is None:
            return False
        staff_id = _as_uuid(usage.reader)
        if staff_id is not None:
            await outbox.enqueue(
                session,
                target="risk",
                path=STAFF_EVENTS_PATH,
                idempotency_key=f"vault-quota-near:{usage.reader}:{usage.window_start.isoformat()}",
                payload={
                    "staff_id": str(staff_id),
                    "kind": "quota_near",
                    "count": usage.records,
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "detail": {
                        "quota": usage.quota,
                        "window_start": usage.window_start.isoformat(),
                        "window_seconds": settings.read_quota_window_seconds,
                        "service": "vault",
                    },
                },
            )
        await session.commit()
        return True


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
