"""The one phone rule identity and the vault share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.phone import RULE, InvalidPhoneNumber, e164, parse_phone

mainland_mobiles = st.from_regex(r"1[3-9]\d{9}", fullmatch=True)
phone_like = st.text(alphabet="+0123456789 -().", max_size=24)


@given(mainland_mobiles, st.sampled_from(["", "+86", "0086", "+86 ", "(+86) "]))
def test_a_mainland_mobile_however_written_is_its_eleven_digits(number: str, prefix: str) -> None:
    written = f"{prefix}{number[:3]}-{number[3:7]} {number[7:]}"
    assert parse_phone(written) == number
    assert e164(written) == "+86" + number


@given(phone_like)
def test_parsing_is_idempotent_and_refuses_with_the_rule_only(value: str) -> None:
    refusal: str | None = None
    try:
        parsed = parse_phone(value)
    except InvalidPhoneNumber as refused:
        refusal = str(refused)
    if refusal is not None:
        assert refusal == RULE  # the same words whatever was typed: the value is never echoed
        return
    assert parse_phone(parsed) == parsed
    assert parse_phone(e164(value)) == parsed  # identity's form and the vault's name the same number


@pytest.mark.parametrize(
    "value",
    [
        "4420794609",  # no + / 00: a bare digit string must be a mainland mobile
        "+1234567",  # 7 digits (identity used to accept it; the vault never did)
        "+1234567890123456",  # 16 digits
        "+0441234567",  # a country code does not start with 0
        "+86 1381234567",  # a mainland mobile with a digit missing
        "+86 138123456789",  # or one too many
        "+44 20 7946 abcd",
    ],
)
def test_numbers_in_neither_form_are_refused(value: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_phone(value)


def test_international_and_landline_numbers_are_e164() -> None:
    assert parse_phone("0044 20 7946 0958") == "+442079460958"
    assert parse_phone("+86 10 6552 9988") == "+861065529988"
    assert e164("+1 381 234 5678") == "+13812345678"  # North America, not the mainland 138...
