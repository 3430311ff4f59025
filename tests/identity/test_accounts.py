"""Registration: real-name validation, the field cipher, duplicates, contact verification.

Where personal data goes (the vault, not identity) is in test_personal_data.py.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from services.identity.accounts.validation import (
    iso7064_mod11_2_check,
    normalise_email,
    normalise_national_id,
    normalise_phone,
    valid_mainland_id,
)
from services.identity.crypto import DecryptionFailed, FieldCipher
from services.identity.models import CustomerProfile
from services.identity.runtime import Runtime
from services.identity.vault import Purpose, VaultClient
from tests.identity.fakes import FakePermissions
from tests.identity.inprocess import Wiring
from tests.identity.staff_support import staff_token
from tests.identity.support import (
    bearer,
    customer_data,
    delivered,
    latest_code,
    login,
    national_id,
    register,
    signed_in,
)


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
    assert normalise_phone("0086 138 0013 8000") == "+8613800138000"
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    assert normalise_phone("12") is None
    # What the vault refuses, identity refuses first (it used to take both).
    assert normalise_phone("+1234567") is None
    assert normalise_phone("4420794609") is None


@given(st.binary(max_size=200), st.text(max_size=20))
def test_field_cipher_round_trip_and_binding(plaintext: bytes, context: str) -> None:
    cipher = FieldCipher("test-secret", "totp")
    blob = cipher.encrypt(plaintext, context)
    assert cipher.decrypt(blob, context) == plaintext
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob, context + "-other-row")
    with pytest.raises(DecryptionFailed):
        FieldCipher("other-secret", "totp").decrypt(blob, context)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(tampered, context)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"id_number": "110105199003071234"}, "invalid_national_id"),
        ({"id_number": "11010519900230123X"}, "invalid_national_id"),
        ({"phone": "12-34-56-ab"}, "invalid_contact"),
        ({"email": "not-an-email"}, "invalid_contact"),
        ({"phone": "+1234567"}, "invalid_contact"),  # E.164-shaped, but the vault keeps 8-15 digits
        ({"phone": "4420794609"}, "invalid_contact"),  # no +/00 and not a mainland mobile: whose number?
        ({"id_type": "passport", "id_number": "E1234/5678"}, "invalid_national_id"),
        ({"password": "qwerty123"}, "weak_password"),
    ],
)
async def test_registration_refusals(client: httpx.AsyncClient, change: dict[str, str], code: str) -> None:
    response = await client.post("/public/register", json=customer_data(**change))
    assert response.status_code == 400
    assert response.json()["code"] == code
    for value in change.values():
        assert value not in response.text


def _digits(count: int) -> str:
    return "".join(random.choice("0123456789") for _ in range(count))


@contextlib.contextmanager
def _vault_unreachable(app: FastAPI) -> Iterator[None]:
    """identity's vault client pointed where nothing listens: whatever still works did not need the vault."""
    runtime: Runtime = app.state.identity
    working = runtime.vault
    wiring: Wiring = app.state.test_wiring
    runtime.vault = VaultClient(wiring.service_client("identity", base_url="http://127.0.0.1:9", retries=0))
    try:
        yield
    finally:
        runtime.vault = working


async def _vault_values(app: FastAPI, account_id: str, fields: list[str]) -> dict[str, str]:
    runtime: Runtime = app.state.identity
    async with app.state.database.sessionmaker() as session:
        profile = await session.get(CustomerProfile, uuid.UUID(account_id))
    assert profile is not None
    assert profile.vault_record_id is not None
    return await runtime.vault.read(profile.vault_record_id, fields, Purpose.account_servicing, unmasked=True)


async def _staff_view(client: httpx.AsyncClient, app: FastAPI, permissions: FakePermissions, account_id: str) -> Any:
    staff_id, token = await staff_token(client, app, f"teller-{uuid.uuid4().hex[:8]}")
    permissions.grant(staff_id, "account:read")
    view = await client.get(f"/staff/accounts/{account_id}", headers=bearer(token))
    assert view.status_code == 200, view.text
    return view


def test_document_numbers_other_than_resident_ids_normalise_like_the_vault() -> None:
    for typed in ("e1234-5678", " E 1234 5678 ", "Ｅ１２３４５６７８"):
        assert normalise_national_id("passport", typed) == "E12345678"
    assert normalise_national_id("other", "C-123") is None  # fewer than 5 letters and digits
    assert normalise_national_id("passport", "E1234/5678") is None


async def test_a_passport_customer_registers_verifies_logs_in_and_staff_see_the_number_masked(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    digits = _digits(8)
    passport = f"E{digits}"
    account_id, data, tokens = await signed_in(client, id_type="passport", id_number=f"e{digits[:4]}-{digits[4:]}")
    assert tokens["status"] == "authenticated"
    # The vault holds it as a document number (not a resident ID), in its normal form.
    stored = await _vault_values(identity_app, account_id, ["national_id", "id_document", "phone"])
    assert stored == {"id_document": passport, "phone": data["phone"]}

    view = await _staff_view(client, identity_app, permissions, account_id)
    personal = view.json()["personal_data"]
    assert view.json()["id_type"] == "passport"
    assert (personal["id_document"], personal["national_id"]) == (f"E*****{digits[-3:]}", None)
    assert passport not in view.text
    assert digits not in view.text

    # The same passport again, typed otherwise: identity's own index refuses it, the vault is not needed.
    with _vault_unreachable(identity_app):
        again = await client.post("/public/register", json=customer_data(id_type="passport", id_number=f"E {digits}"))
    # The same answer as a new registration (issue 13 item 12); the decoy id verifies nothing.
    assert again.status_code == 201
    assert again.json()["account_id"] != account_id


async def test_an_other_document_registers_under_the_vault_document_type(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    permit = f"H{_digits(10)}"  # a Hong Kong/Macau travel permit
    account_id, _ = await register(client, id_type="other", id_number=permit)
    assert await _vault_values(identity_app, account_id, ["national_id", "id_document"]) == {"id_document": permit}


async def test_a_customer_with_an_international_phone_registers_verifies_logs_in_and_gets_codes_there(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    local = "7911" + _digits(6)
    e164 = "+44" + local
    account_id, _, tokens = await signed_in(client, phone=f"+44 {local[:4]} {local[4:]}")
    assert tokens["status"] == "authenticated"
    assert await _vault_values(identity_app, account_id, ["phone"]) == {"phone": e164}
    messages = await delivered(identity_app, client, account_id)
    assert {m["recipient"] for m in messages if m["channel"] == "sms"} == {e164}
    # Logging in with the number written another way finds the same account (identity's own index).
    again = await login(client, e164, device_id="same-device-as-before")
    assert again.status_code == 200, again.text

    view = await _staff_view(client, identity_app, permissions, account_id)
    assert view.json()["personal_data"]["phone"] == f"+44****{local[-4:]}"
    assert local not in view.text


async def test_duplicates_are_refused_without_saying_which_field(client: httpx.AsyncClient) -> None:
    data = customer_data()
    assert (await client.post("/public/register", json=data)).status_code == 201
    for field in ("phone", "email", "id_number"):
        again = customer_data(**{field: data[field]})
        response = await client.post("/public/register", json=again)
        # Answered like a new registration (issue 13 item 12: no enumeration), without saying anything.
        assert response.status_code == 201
        assert set(response.json()) == {"account_id", "verification_sent"}


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
