"""History import: CSV rows (our columns, or another export's through a mapping) to stored transactions.

Imported rows are stored like scored transactions (source ``imported``, no decision), so baselines,
backtests and training read them in event time. A re-import adds nothing twice (keyed by
transaction id); a label without its own time is known ``label_delay_days`` after the transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.baselines.service import customer_key_of
from services.risk.errors import InvalidImport
from services.risk.history import repository
from services.risk.history.schemas import COLUMNS, ImportOptions, ImportOut

FRAUD = {"1", "fraud", "true", "yes"}
GENUINE = {"0", "genuine", "false", "no"}


class RowMapper:
    """One file row (a dict by the file's header) -> the values of a stored transaction."""

    def __init__(self, options: ImportOptions, header: list[str]) -> None:
        unknown = set(options.mapping) - set(COLUMNS)
        if unknown:
            raise InvalidImport(f"unknown target columns in the mapping: {', '.join(sorted(unknown))}")
        self.options = options
        self.source = {column: options.mapping.get(column, column) for column in COLUMNS}
        missing = [c for c in ("transaction_id", "occurred_at", "account_id", "payee") if self.source[c] not in header]
        if self.source["amount_minor"] not in header and self.source["amount"] not in header:
            missing.append("amount_minor or amount")
        if missing:
            raise InvalidImport(f"the file has no column for: {', '.join(missing)}")
        self.header = set(header)
        self.delay = timedelta(days=options.label_delay_days)

    def _get(self, row: dict[str, str], column: str) -> str | None:
        name = self.source[column]
        if not name or name not in self.header:
            return None
        value = row.get(name)
        return value.strip() if value and value.strip() else None

    def __call__(self, row: dict[str, str], number: int) -> dict[str, Any]:
        try:
            return self._map(row)
        except (ValueError, InvalidOperation) as exc:
            raise InvalidImport(f"row {number}: {exc}", row=number) from exc

    def _map(self, row: dict[str, str]) -> dict[str, Any]:
        get = self._get
        tx_id, account, payee, when = (get(row, c) for c in ("transaction_id", "account_id", "payee", "occurred_at"))
        if not tx_id or not account or not payee or not when:
            raise ValueError("transaction_id, account_id, payee and occurred_at are required")
        occurred_at = _timestamp(when)
        minor = get(row, "amount_minor")
        if minor is not None:
            amount_minor = int(minor)
        else:
            major = get(row, "amount")
            if major is None:
                raise ValueError("no amount")
            amount_minor = int((Decimal(major) * self.options.amount_scale).to_integral_value())
        if amount_minor < 0:
            raise ValueError("negative amount")
        label = _label(get(row, "label"))
        labelled = get(row, "labelled_at")
        labelled_at = None if label is None else (_timestamp(labelled) if labelled else occurred_at + self.delay)
        customer_id = get(row, "customer_id")
        return {
            "transaction_id": tx_id[:128],
            "customer_key": customer_key_of(customer_id, account),
            "account_id": account[:64],
            "customer_id": customer_id,
            "payee": payee[:200],
            "amount_minor": amount_minor,
            "currency": (get(row, "currency") or self.options.currency)[:3],
            "occurred_at": occurred_at,
            "kind": get(row, "kind") or self.options.kind,
            "channel": get(row, "channel") or self.options.channel,
            "ip": get(row, "ip"),
            "device_id": get(row, "device_id"),
            "region": get(row, "region"),
            "source": "imported",
            "label": label,
            "labelled_at": labelled_at,
            "label_source": "import" if label else None,
        }


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _label(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in FRAUD:
        return "fraud"
    if lowered in GENUINE:
        return "genuine"
    raise ValueError(f"label {value!r} is not fraud/genuine/1/0")


def rows_of(lines: Iterable[str], options: ImportOptions) -> tuple[RowMapper, Iterator[dict[str, Any]]]:
    reader = csv.DictReader(iter(lines))
    header = list(reader.fieldnames or [])
    mapper = RowMapper(options, header)

    def generate() -> Iterator[dict[str, Any]]:
        for number, row in enumerate(reader, start=2):
            yield mapper(row, number)

    return mapper, generate()


async def import_batches(
    session: AsyncSession,
    rows: Iterator[dict[str, Any]],
    *,
    batch_size: int,
    commit_each: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportOut:
    """Insert in batches (each its own commit for the CLI, so a long import resumes where it stopped)."""
    read = inserted = labelled = 0
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        nonlocal inserted
        inserted += await repository.insert_batch(session, batch)
        if commit_each:
            await session.commit()
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for row in rows:
        read += 1
        labelled += int(row["label"] is not None)
        batch.append(row)
        if len(batch) >= batch_size:
            await flush()
    await flush()
    return ImportOut(read=read, inserted=inserted, already_stored=read - inserted, labelled=labelled)
