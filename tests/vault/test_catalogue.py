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
from services.vault.config import VaultSettings


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


international_numbers = st.from_regex(r"[2-9]\d{7,14}", fullmatch=True).filter(lambda d: not d.startswith("86"))


@given(international_numbers, st.sampled_from(["+", "00", "+ "]))
def test_an_international_phone_is_kept_in_e164(digits: str, prefix: str) -> None:
    formatted = prefix + digits[:3] + " (" + digits[3:5] + ") " + digits[5:-3] + "-" + digits[-3:]
    _, normalised = prepare("phone", formatted)
    assert normalised == "+" + digits


def test_a_mainland_landline_is_kept_in_e164() -> None:
    assert prepare("phone", "+86 10 6552 9988")[1] == "+861065529988"
    assert prepare("phone", "0086 21-5049-1234")[1] == "+862150491234"


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_a_mainland_mobile_and_a_plus_one_number_with_the_same_digits_stay_apart(number: str) -> None:
    """``+1 381 234 5678`` is North America, not the mainland mobile ``13812345678``: never the same index."""
    _, mainland = prepare("phone", number)
    _, abroad = prepare("phone", "+" + number)
    assert (mainland, abroad) == (number, "+" + number)


@given(international_numbers)
def test_an_international_phone_mask_never_shows_more_than_a_mainland_one(digits: str) -> None:
    spec, normalised = prepare("phone", "+" + digits)
    masked = spec.mask(normalised)
    shown = re.sub(r"\D", "", masked)
    assert re.fullmatch(r"\+\d{2}\*{4}\d{2,4}", masked)
    assert masked.startswith("+" + digits[:2])
    assert digits.endswith(masked.rsplit("*", 1)[1])
    assert len(shown) <= 6  # a mainland mask shows 7 of 11 digits
    assert len(digits) - len(shown) >= 4  # and hides 4; so does this one, however short the number


# The rule itself (kit/phone.py, shared with identity) is tested in tests/kit/test_phone.py.
@pytest.mark.parametrize("value", ["4420794609", "+1234567", "+86 1381234567"])
def test_phone_numbers_that_are_neither_form_are_refused(value: str) -> None:
    with pytest.raises(InvalidFieldValue) as info:
        prepare("phone", value)
    assert value not in str(info.value)


id_documents = st.from_regex(r"[A-Z0-9]{5,20}", fullmatch=True)


@given(id_documents, st.booleans(), st.booleans())
def test_id_document_normalises_spaces_hyphens_case_and_full_width(number: str, lower: bool, full_width: bool) -> None:
    typed = number.lower() if lower else number
    if full_width:
        typed = "".join(chr(ord(c) + 0xFEE0) for c in typed)  # Ａ-Ｚ, ０-９ as a Chinese keyboard types them
    typed = " " + typed[:2] + "-" + typed[2:4] + " " + typed[4:] + " "
    _, normalised = prepare("id_document", typed)
    assert normalised == number


@given(id_documents)
def test_id_document_mask_shows_the_first_and_at_most_the_last_three(number: str) -> None:
    spec, normalised = prepare("id_document", number)
    masked = spec.mask(normalised)
    shown_end = 3 if len(number) >= 8 else 1
    assert masked == number[0] + "*****" + number[-shown_end:]
    assert len(number) - (1 + shown_end) >= 3  # at least 3 characters hidden, and the length is not shown


@pytest.mark.parametrize(
    "value",
    ["E123", "E12345678901234567890X", "E1234/5678", "护照12345678", "E12345678\u0000", "   "],
)
def test_id_documents_that_are_not_5_to_20_letters_and_digits_are_refused(value: str) -> None:
    with pytest.raises(InvalidFieldValue) as info:
        prepare("id_document", value)
    if value.strip():
        assert value not in str(info.value)


def test_document_numbers_need_an_approval_for_an_unmasked_staff_read_like_national_ids() -> None:
    approval = VaultSettings().approval_field_types
    assert {"national_id", "id_document"} <= set(approval)
    assert FIELD_TYPES["id_document"].indexable
    assert FIELD_TYPES["id_document"].data_class == DataClass.core_identity


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
        ("phone", "+44 12"),
        ("id_document", "E-12"),
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
