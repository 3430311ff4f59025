"""Exports of services' audit-chain entries as audit evidence.

The entries come from the service's ``GET /internal/audit/entries`` (kit,
scope ``audit:verify``) through the gateway. Each entry's hash is recomputed
from its fields and the previous entry's hash (``kit.audit.compute_hash``),
so the export says whether the range is intact, and the file (JSON lines,
written once, SHA-256 kept with the evidence) proves what was seen that day.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.audit import compute_hash
from kit.http import ServiceClient
from kit.retention import Archive, write_archive
from services.incidents.governance.errors import SourceUnavailable

ENTRIES = "/v1/{service}/internal/audit/entries"


@dataclass(frozen=True, slots=True)
class ChainExport:
    archive: Archive
    first_bad_seq: int | None


def first_bad(entries: list[dict[str, Any]], seq_from: int) -> int | None:
    """The first entry of the range that is missing, out of order, or not hashed as written."""
    expected = seq_from
    previous: str | None = None
    for entry in entries:
        if entry["seq"] != expected:
            return expected
        if previous is not None and entry["prev_hash"] != previous:
            return int(entry["seq"])
        fields = {key: value for key, value in entry.items() if key not in ("prev_hash", "entry_hash")}
        if compute_hash(bytes.fromhex(entry["prev_hash"]), fields).hex() != entry["entry_hash"]:
            return int(entry["seq"])
        previous = entry["entry_hash"]
        expected += 1
    return None


async def export_chain(client: ServiceClient, service: str, seq_from: int, seq_to: int, directory: Path) -> ChainExport:
    entries: list[dict[str, Any]] = []
    cursor: int | None = seq_from
    while cursor is not None:
        response = await client.request(
            "GET", ENTRIES.format(service=service), params={"seq_from": str(cursor), "seq_to": str(seq_to)}
        )
        if response.status_code != 200:
            raise SourceUnavailable(f"{service} answered {response.status_code}", source=service)
        page = response.json()
        entries.extend(page["entries"])
        cursor = page.get("next_seq")
    bad = first_bad(entries, seq_from)
    if bad is None and (not entries or entries[-1]["seq"] != seq_to):
        bad = (entries[-1]["seq"] + 1) if entries else seq_from
    archive = await asyncio.to_thread(write_archive, directory, f"{service}-audit-{seq_from}-{seq_to}", entries)
    return ChainExport(archive=archive, first_bad_seq=bad)
