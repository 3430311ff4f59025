"""Fuzz of the transit ciphertext parser: any string is parsed or refused with a 400 problem type."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.vault.errors import MalformedCiphertext
from services.vault.transit.service import parse


@given(st.text(max_size=120))
def test_any_text_parses_or_is_malformed(text: str) -> None:
    try:
        version, blob = parse(text)
    except MalformedCiphertext:
        return
    assert version >= 0
    assert text == f"vault:v{version}:{base64.b64encode(blob).decode()}" or text.startswith("vault:v")


@given(st.integers(1, 10**6), st.binary(min_size=1, max_size=64))
def test_round_trip(version: int, blob: bytes) -> None:
    assert parse(f"vault:v{version}:{base64.b64encode(blob).decode()}") == (version, blob)


@pytest.mark.parametrize(
    "text", ["vault:v:AAAA", "vault:v1:", "vault:vx:AAAA", "vault:v1:AAA", "VAULT:v1:AAAA", "vault:v١:AAAA"]
)
def test_malformed_examples(text: str) -> None:
    with pytest.raises(MalformedCiphertext):
        parse(text)
