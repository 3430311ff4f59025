"""Registration: real-name validation, encryption of personal data, duplicates, contact verification."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from services.identity.accounts.validation import (
    iso7064_mod11_2_check,
    normalise_email,
    normalise_phone,
    valid_mainland_id,
)
from services.identity.crypto import DecryptionFailed, FieldCipher
from tests.identity.support import customer_data, latest_code, national_id


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("11010519491231002X", True),  # the example of GB 11643-1999
        ("11010519491231002x", True),
        ("110105194912310021", False),  # wrong check character
        ("11010519491331002X", False),  # month 13
        ("01010519491231002X", False),  # leading zero
        ("1101051949123100", False),
    ],
)
def test_known_mainland_ids(number: str, valid: bool) -> None:
    assert valid_mainland_id(number) is valid


@given(
    region=st.integers(110000, 659999),
    day=st.dates(min_value=date(1920, 1, 1), max_value=date(2010, 12, 31)),
    seq=st.integers(0, 999),
    wrong=st.sampled_from("0123456789X"),
)
def test_check_character_catches_every_single_change(region: int, day: date, seq: int, wrong: str) -> None:
    body = f"{region}{day:%Y%m%d}{seq:03d}"
    check = iso7064_mod11_2_check(body)
    assert valid_mainland_id(body + check)
    if wrong != check:
        assert not valid_mainland_id(body + wrong)


@given(st.text(max_size=30))
def test_validators_never_raise(value: str) -> None:
    valid_mainland_id(value)
    normalise_phone(value)
    normalise_email(value)


def test_phone_normalisation() -> None:
    assert normalise_phone("138 0013 8000") == "+8613800138000"
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    assert normalise_phone("12") is None


@given(st.binary(max_size=200), st.text(max_size=20))
def test_field_cipher_round_trip_and_binding(plaintext: bytes, context: str) -> None:
    cipher = FieldCipher("test-secret", "pii")
    blob = cipher.encrypt(plaintext, context)
    assert cipher.decrypt(blob, context) == plaintext
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob, context + "-other-row")
    with pytest.raises(DecryptionFailed):
        FieldCipher("other-secret", "pii").decrypt(blob, context)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(tampered, context)


async def test_personal_data_is_encrypted_at_rest(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    data = customer_data()
    response = await client.post("/public/register", json=data)
    assert response.status_code == 201
    account_id = response.json()["account_id"]
    async with identity_app.state.database.sessionmaker() as session:
        raw = (
            await session.execute(
                text(
                    "SELECT a::text || p::text FROM identity.account a JOIN identity.customer_profile p "
                    "ON p.account_id = a.id WHERE a.id = :id"
                ),
                {"id": uuid.UUID(account_id)},
            )
        ).scalar_one()
    digits = data["phone"]
    for secret in (digits, data["id_number"], data["email"], data["name"]):
        assert secret not in raw
        assert secret.encode().hex() not in raw


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id_number": "110105199003071234"}, "invalid_national_id"),
        ({"id_number": "11010519900230123X"}, "invalid_national_id"),
        ({"phone": "12-34-56-ab"}, "invalid_contact"),
        ({"email": "not-an-email"}, "invalid_contact"),
        ({"password": "qwerty123"}, "weak_password"),
    ],
)
async def test_registration_refusals(client: httpx.AsyncClient, change: dict[str, str], code: str) -> None:
    response = await client.post("/public/register", json=customer_data(**change))
    assert response.status_code == 400
    assert response.json()["code"] == code
    for value in change.values():
        assert value not in response.text


async def test_passport_numbers_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/public/register", json=customer_data(id_type="passport", id_number="E12345678"))
    assert response.status_code == 201


async def test_duplicates_are_refused_without_saying_which_field(client: httpx.AsyncClient) -> None:
    data = customer_data()
    assert (await client.post("/public/register", json=data)).status_code == 201
    for field in ("phone", "email", "id_number"):
        again = customer_data(**{field: data[field]})
        response = await client.post("/public/register", json=again)
        assert response.status_code == 409
        assert response.json()["code"] == "already_registered"
        assert field not in response.json()["detail"]


async def test_contact_verification_codes_are_attempt_limited(client: httpx.AsyncClient) -> None:
    data = customer_data(id_number=national_id())
    account_id = (await client.post("/public/register", json=data)).json()["account_id"]
    code = await latest_code(client, account_id, "code.verify:email")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        response = await client.post(
            "/public/register/verify", json={"account_id": account_id, "channel": "email", "code": wrong}
        )
        assert response.status_code == 400
    exhausted = await client.post(
        "/public/register/verify", json={"account_id": account_id, "channel": "email", "code": code}
    )
    assert exhausted.status_code == 429


async def test_verification_code_can_be_sent_again(client: httpx.AsyncClient) -> None:
    data = customer_data()
    account_id = (await client.post("/public/register", json=data)).json()["account_id"]
    first = await latest_code(client, account_id, "code.verify:sms")
    resent = await client.post("/public/register/resend", json={"account_id": account_id, "channel": "sms"})
    assert resent.status_code == 202
    second = await latest_code(client, account_id, "code.verify:sms")
    stale = await client.post(
        "/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": first}
    )
    assert stale.status_code == 400 or first == second
    ok = await client.post("/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": second})
    assert ok.status_code == 200
    unknown = await client.post("/public/register/resend", json={"account_id": str(uuid.uuid4()), "channel": "sms"})
    assert unknown.status_code == 202
