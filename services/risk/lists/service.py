"""Shared lists: add (idempotently), remove, import and export in CSV and JSON; every change audited."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.errors import InvalidImport, ListEntryNotFound
from services.risk.lists import repository
from services.risk.lists.schemas import EntryIn, EntryOut, ListName
from services.risk.models import ListEntry, audit_log

EXPORT_COLUMNS = ("value", "verdict", "reason", "reference", "expires_at", "added_by", "added_at")
MAX_IMPORT_ROWS = 50_000


def normalise(list_name: ListName, value: str) -> str:
    value = value.strip()
    if list_name in {ListName.phishing_domain, ListName.ip}:
        value = value.lower()
    if list_name == ListName.phishing_domain:
        value = value.rstrip(".")
    return value


async def add(
    session: AsyncSession, list_name: ListName, body: EntryIn, *, actor: str, actor_kind: str
) -> tuple[ListEntry, bool]:
    """Add an entry; the same list/value/verdict already active answers that entry (created False)."""
    value = normalise(list_name, body.value)
    entry = await repository.insert_active(
        session,
        {
            "list": list_name.value,
            "value": value,
            "verdict": body.verdict.value,
            "reason": body.reason,
            "reference": body.reference,
            "expires_at": body.expires_at,
            "added_by": actor,
        },
    )
    if entry is None:
        existing = await repository.active_entry(session, list_name.value, value, body.verdict.value)
        assert existing is not None
        return existing, False
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="list.entry_added",
        target=str(entry.id),
        detail={"list": entry.list, "verdict": entry.verdict, "reference": entry.reference},
    )
    return entry, True


async def remove(
    session: AsyncSession, list_name: ListName, entry_id: uuid.UUID, *, actor: str, reason: str
) -> ListEntry:
    entry = await repository.remove(session, entry_id, list_name.value, actor)
    if entry is None:
        raise ListEntryNotFound(f"no active entry {entry_id} in list {list_name.value}")
    await audit_log.append(
        session,
        actor=actor,
        actor_kind="staff",
        action="list.entry_removed",
        target=str(entry.id),
        detail={"list": entry.list, "reason": reason},
    )
    return entry


def parse_import(content: str, fmt: str) -> list[EntryIn]:
    """CSV with a header (value, verdict, reason[, reference, expires_at]) or a JSON array of such objects."""
    rows: list[Any]
    try:
        if fmt == "json":
            loaded = json.loads(content)
            rows = loaded.get("entries", []) if isinstance(loaded, dict) else loaded
            if not isinstance(rows, list):
                raise InvalidImport('JSON must be an array of entries or {"entries": [...]}')
        else:
            rows = [{k: (v or None) for k, v in row.items()} for row in csv.DictReader(io.StringIO(content))]
    except (json.JSONDecodeError, csv.Error) as exc:
        raise InvalidImport(f"cannot parse the {fmt} file: {exc}") from exc
    if len(rows) > MAX_IMPORT_ROWS:
        raise InvalidImport(f"at most {MAX_IMPORT_ROWS} entries per import")
    parsed: list[EntryIn] = []
    for number, row in enumerate(rows, start=1):
        try:
            parsed.append(EntryIn.model_validate(row))
        except ValidationError as exc:
            raise InvalidImport(f"entry {number}: {exc.errors()[0]['msg']}", entry=number) from exc
    return parsed


async def import_entries(
    session: AsyncSession, list_name: ListName, entries: list[EntryIn], *, actor: str
) -> tuple[int, int]:
    added = 0
    for entry in entries:
        _, created = await add(session, list_name, entry, actor=actor, actor_kind="staff")
        added += int(created)
    return added, len(entries) - added


def export(entries: list[ListEntry], fmt: str) -> str:
    out = [EntryOut.of(e).model_dump(mode="json") for e in entries]
    if fmt == "json":
        return json.dumps({"entries": out}, ensure_ascii=False)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in out:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in EXPORT_COLUMNS})
    return buffer.getvalue()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
