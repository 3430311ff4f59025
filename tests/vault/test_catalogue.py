"""Masking and normalisation rules, with the examples of the requirements and properties over many values."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.vault.catalogue import (
    CLASS_POLICIES,
    FIELD_TYPES,
    FIXED_MASK,
    DataClass,
    InvalidFieldValue,
    national_id_check_char,
    prepare,
)


def test_the_examples_of_the_requirements() -> None:
    assert FIELD_TYPES["national_id"].mask("110105194912311234") == "110***********1234"
    assert FIELD_TYPES["phone"].mask("13812345678") == "138****5678"
    assert FIELD_TYPES["bank_card"].mask("6222021234561234") == "6222 **** **** 1234"
    assert FIELD_TYPES["name"].mask("张三") == "张*"


def test_every_catalogue_example_masks_as_documented() -> None:
    for spec in FIELD_TYPES.values():
        _, normalised = prepare(spec.name, spec.example)
        assert spec.mask(normalised) == spec.example_masked, spec.name


def test_every_class_has_a_policy_and_authentication_is_never_shown_to_staff() -> None:
    assert set(CLASS_POLICIES) == set(DataClass)
    assert not CLASS_POLICIES[DataClass.authentication].staff_unmasked
    assert {t.data_class for t in FIELD_TYPES.values()} == set(DataClass)


national_ids = st.builds(
    lambda region, birth, seq: region + birth + seq,
    st.from_regex(r"[1-6]\d{5}", fullmatch=True),
    st.from_regex(r"(19[5-9]\d|20[01]\d)(0[1-9]|1[0-2])(0[1-9]|1\d|2[0-8])", fullmatch=True),
    st.from_regex(r"\d{3}", fullmatch=True),
).map(lambda first17: first17 + national_id_check_char(first17))


@given(national_ids)
def test_national_id_mask_keeps_three_and_four(value: str) -> None:
    spec, normalised = prepare("national_id", value.lower())
    masked = spec.mask(normalised)
    assert re.fullmatch(r"\d{3}\*{11}\d{3}[\dX]", masked)
    assert masked[:3] == value[:3]
    assert masked[-4:] == value[-4:]


@given(national_ids, st.integers(0, 16))
def test_a_wrong_check_digit_is_refused(value: str, position: int) -> None:
    digit = str((int(value[position]) + 1) % 10)
    broken = value[:position] + digit + value[position + 1 :]
    if national_id_check_char(broken[:17]) == broken[17]:
        return  # rarely a changed digit keeps the checksum valid
    with pytest.raises(InvalidFieldValue):
        prepare("national_id", broken)


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), st.sampled_from(["", "+86", "0086", "+86 "]))
def test_phone_normalises_and_masks(number: str, prefix: str) -> None:
    formatted = prefix + number[:3] + "-" + number[3:7] + " " + number[7:]
    spec, normalised = prepare("phone", formatted)
    assert normalised == number
    assert spec.mask(normalised) == number[:3] + "****" + number[-4:]


@given(st.from_regex(r"\d{12,19}", fullmatch=True))
def test_card_mask_hides_the_length_and_middle(card: str) -> None:
    spec, normalised = prepare("bank_card", " ".join(card[i : i + 4] for i in range(0, len(card), 4)))
    masked = spec.mask(normalised)
    assert masked == f"{card[:4]} **** **** {card[-4:]}"


@given(st.text(alphabet=st.characters(categories=["Lo", "Lu", "Ll"]), min_size=1, max_size=20))
def test_name_mask_keeps_only_the_first_character(name: str) -> None:
    spec, normalised = prepare("name", name)
    masked = spec.mask(normalised)
    assert len(masked) == len(normalised)
    if len(normalised) == 1:
        assert masked == "*"  # a one-character name is not shown at all
    else:
        assert masked[0] == normalised[0]
        assert set(masked[1:]) == {"*"}


@given(st.sampled_from(sorted(FIELD_TYPES)), st.data())
def test_normalising_is_idempotent(name: str, data: st.DataObject) -> None:
    spec = FIELD_TYPES[name]
    _, once = prepare(name, spec.example)
    _, twice = prepare(name, once)
    assert once == twice


@given(st.text(max_size=30))
def test_authentication_values_always_mask_to_the_same_fixed_string(secret: str) -> None:
    for name in ("security_answer", "biometric_template"):
        assert FIELD_TYPES[name].mask(secret) == FIXED_MASK


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("phone", "12345"),
        ("national_id", "11010519491231002Y"),
        ("bank_card", "6222-abc"),
        ("email", "not-an-email"),
        ("birth_date", "1990/05/17"),
        ("ip_address", "999.1.1.1"),
        ("name", "   "),
        ("name", "a\u0000b"),
    ],
)
def test_invalid_values_are_refused_without_echoing_them(name: str, value: str) -> None:
    with pytest.raises(InvalidFieldValue) as info:
        prepare(name, value)
    if value.strip():
        assert value not in str(info.value)


@given(st.sampled_from(sorted(FIELD_TYPES)), st.text(max_size=80))
def test_any_input_is_either_refused_cleanly_or_masked(name: str, value: str) -> None:
    """Fuzz: arbitrary text never raises anything but InvalidFieldValue, and a mask never fails."""
    try:
        spec, normalised = prepare(name, value)
    except InvalidFieldValue:
        return
    masked = spec.mask(normalised)
    assert masked
    if len(normalised) >= 8 and name not in ("address", "login_location", "device_id"):
        assert masked != normalised
