"""The database hashes the bytes the verifier hashes: the canonical JSON split around the sequence number."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.audit import canonical, canonical_around_seq

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Entry-like objects: any top-level keys but "seq" (the database's), including
#: keys that sort before and after it and non-ASCII ones.
entries = st.dictionaries(st.text(max_size=12).filter(lambda key: key != "seq"), json_values, max_size=8)


@given(entries, st.integers(min_value=1, max_value=2**63 - 1))
def test_the_split_joined_with_the_digits_is_the_canonical_form(fields: dict[str, Any], seq: int) -> None:
    before, after = canonical_around_seq(fields)
    assert before + str(seq).encode() + after == canonical(fields | {"seq": seq})


def test_an_entry_with_only_a_sequence_number() -> None:
    before, after = canonical_around_seq({})
    assert json.loads(before + b"7" + after) == {"seq": 7}


def test_the_sequence_number_is_never_taken_from_the_caller() -> None:
    with pytest.raises(ValueError, match="database"):
        canonical_around_seq({"seq": 1})
