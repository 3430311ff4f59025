"""Reading labelled history from CSV into :class:`HistoryEvent` s (training input).

Two layouts are understood, told apart by their header:

- the Fraud Detection Handbook's (``transaction_id, tx_datetime, customer_id,
  terminal_id, tx_amount, tx_fraud``): the customer is the account, the terminal the
  payee, every row a card payment, amounts in major units (converted to integer minor
  units without going through floats), and each label known seven days after the
  transaction, as analysts would confirm it;
- the suite's history columns (docs/risk-model.md): ``transaction_id, customer_id,
  payee, amount_minor, occurred_at, kind, channel`` and optionally ``account_id``
  (used when ``customer_id`` is empty), ``device_id, region, label, labelled_at``.

Gzip files (``.gz``) are read as such. Times without an offset are UTC.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.history.repository import history_events
from services.risk.learning.features import HistoryEvent

LABEL_DELAY = timedelta(days=7)
FDH_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud")
SUITE_REQUIRED = ("transaction_id", "payee", "amount_minor", "occurred_at", "kind", "channel")
LABELS = ("fraud", "genuine")


class BadHistory(ValueError):
    """A history file whose header or a row cannot be read (the message names the line)."""


def parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def to_minor(text: str) -> int:
    """``"57.16"`` -> ``5716``: exact decimal arithmetic, at most two decimals."""
    try:
        value = Decimal(text.strip()) * 100
    except InvalidOperation as exc:
        raise BadHistory(f"not an amount: {text!r}") from exc
    if value != value.to_integral_value():
        raise BadHistory(f"more than two decimals: {text!r}")
    return int(value)


def open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_history(path: Path) -> Iterator[HistoryEvent]:
    """The events of a CSV file in file order (sort by ``occurred_at`` before replaying)."""
    with open_text(path) as handle:
        yield from read_rows(handle)


def read_rows(handle: TextIO) -> Iterator[HistoryEvent]:
    reader = csv.reader(handle)
    header = [h.strip().lower() for h in next(reader, [])]
    if tuple(header[: len(FDH_COLUMNS)]) == FDH_COLUMNS:
        parse = _fdh_row
    elif all(c in header for c in SUITE_REQUIRED) and ("customer_id" in header or "account_id" in header):
        parse = _suite_row
    else:
        raise BadHistory(f"unknown header {header!r}: expected the fdh columns or {SUITE_REQUIRED!r}")
    index = {name: i for i, name in enumerate(header)}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            yield parse(row, index)
        except (IndexError, ValueError) as exc:
            raise BadHistory(f"line {line}: {exc}") from exc


def _fdh_row(row: list[str], index: dict[str, int]) -> HistoryEvent:
    occurred = parse_time(row[1])
    fraud = row[5].strip()
    if fraud not in ("0", "1"):
        raise BadHistory(f"tx_fraud must be 0 or 1, not {fraud!r}")
    return HistoryEvent(
        transaction_id=row[0].strip(),
        customer_id=row[2].strip(),
        payee=row[3].strip(),
        amount_minor=to_minor(row[4]),
        occurred_at=occurred,
        kind="card_payment",
        channel="pos",
        device_id=None,
        region=None,
        label="fraud" if fraud == "1" else "genuine",
        labelled_at=occurred + LABEL_DELAY,
    )


def _suite_row(row: list[str], index: dict[str, int]) -> HistoryEvent:
    def get(name: str) -> str | None:
        i = index.get(name)
        value = row[i].strip() if i is not None and i < len(row) else ""
        return value or None

    customer = get("customer_id") or get("account_id")
    if customer is None:
        raise BadHistory("customer_id or account_id is required")
    label = get("label")
    if label is not None and label not in LABELS:
        raise BadHistory(f"label must be one of {LABELS}, not {label!r}")
    labelled = get("labelled_at")
    occurred = parse_time(get("occurred_at") or "")
    amount = int(get("amount_minor") or "")
    if amount < 0:
        raise BadHistory("amount_minor must not be negative")
    return HistoryEvent(
        transaction_id=get("transaction_id") or "",
        customer_id=customer,
        payee=get("payee") or "",
        amount_minor=amount,
        occurred_at=occurred,
        kind=get("kind") or "",
        channel=get("channel") or "",
        device_id=get("device_id"),
        region=get("region"),
        label=label,
        labelled_at=(parse_time(labelled) if labelled else occurred) if label is not None else None,
    )


# --- From the database ---------------------------------------------------------------

#: The columns of :class:`HistoryEvent` (``--from-db`` reads them through the risk engine's
#: ``services.risk.history.repository.history_events``).
HISTORY_COLUMNS = (
    "transaction_id",
    "customer_id",
    "payee",
    "amount_minor",
    "occurred_at",
    "kind",
    "channel",
    "device_id",
    "region",
    "label",
    "labelled_at",
)


async def read_history_db(
    session: AsyncSession, *, until: datetime, batch: int = 10_000
) -> AsyncIterator[HistoryEvent]:
    """Stored history before ``until``, in ``occurred_at`` order, streamed in batches.

    The risk engine's stored transactions (scored and imported, with their labels), read by its
    repository: there is no ``risk.history_events`` view.
    """
    async for event in history_events(session, occurred_to=until, batch_size=batch):
        yield event
