"""The integrity check of an exported range of audit entries."""

from __future__ import annotations

from typing import Any

from kit.audit import GENESIS_HASH, compute_hash
from services.incidents.governance.audits.exports import first_bad


def chain(count: int) -> list[dict[str, Any]]:
    entries = []
    previous = GENESIS_HASH
    for seq in range(1, count + 1):
        fields = {
            "seq": seq,
            "id": f"id-{seq}",
            "occurred_at": "2026-12-01T00:00:00+00:00",
            "actor": "a",
            "actor_kind": "staff",
            "action": "x",
            "target": None,
            "outcome": "success",
            "detail": {"n": seq},
            "request_id": None,
            "trace_id": None,
        }
        digest = compute_hash(previous, fields)
        entries.append({**fields, "prev_hash": previous.hex(), "entry_hash": digest.hex()})
        previous = digest
    return entries


def test_an_intact_range_has_no_bad_entry() -> None:
    assert first_bad(chain(5), 1) is None
    assert first_bad(chain(5)[2:], 3) is None


def test_an_edited_missing_or_relinked_entry_is_found() -> None:
    edited = chain(5)
    edited[2]["actor"] = "someone else"
    assert first_bad(edited, 1) == 3
    missing = chain(5)
    del missing[1]
    assert first_bad(missing, 1) == 2
    relinked = chain(5)
    relinked[3]["prev_hash"] = "00" * 32
    assert first_bad(relinked, 1) == 4
