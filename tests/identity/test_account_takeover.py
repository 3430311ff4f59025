"""Issue 13 item 1 (a stolen aal1 session takes the account), item 10 (the current password is guessed
freely) and issue 12 item 6 (TOTP label, wrong current password is not a 401): replayed as the attacker."""

from __future__ import annotations

import time
import uuid

import httpx
import pyotp
from fastapi import FastAPI
from sqlalchemy import update

from services.identity.models import Account, CustomerProfile
from tests.identity.authenticator import SoftAuthenticator
from tests.identity.support import (
    PASSWORD,
    bearer,
    factor_change_proof,
    latest_code,
    login,
    signed_in,
    sink,
)


async def _templates(client: httpx.AsyncClient, account_id: str) -> list[tuple[str, str]]:
    return [(m["template"], m["channel"]) for m in await sink(client, account_id)]


async def test_a_stolen_aal1_session_cannot_add_a_passkey_or_an_authenticator(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    stolen = bearer(tokens["access_token"])
    assert tokens["acr"] == "aal1"
    for path in ("/me/mfa/webauthn/options", "/me/mfa/totp"):
        bare = await client.post(path, headers=stolen)
        assert (bare.status_code, bare.json()["code"]) == (403, "reauthentication_required"), path
        # The thief does not know the password: a guess is refused and counts toward the lockout.
        guessed = await client.post(path, json={"current_password": "Guess-Number-1!"}, headers=stolen)
        assert (guessed.status_code, guessed.json()["code"]) == (403, "wrong_current_password")
        # Even with the password, a fresh second factor for mfa.change is needed.
        no_step_up = await client.post(path, json={"current_password": PASSWORD}, headers=stolen)
        assert (no_step_up.status_code, no_step_up.json()["code"]) == (403, "step_up_required")
    mine = await client.get("/me/account", headers=stolen)
    assert mine.json()["failed_count"] == 2


async def test_guessing_the_password_through_factor_changes_locks_the_account(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    _, _, tokens = await signed_in(client)
    stolen = bearer(tokens["access_token"])
    threshold = identity_app.state.identity.settings.lockout_threshold
    for _ in range(threshold + 1):
        await client.post("/me/mfa/totp", json={"current_password": "Guess-Number-1!"}, headers=stolen)
    locked = await client.post("/me/mfa/totp", json={"current_password": PASSWORD}, headers=stolen)
    assert (locked.status_code, locked.json()["code"]) == (403, "account_locked")


async def test_the_holder_adds_lists_and_removes_a_passkey_and_is_told(client: httpx.AsyncClient) -> None:
    account_id, data, tokens = await signed_in(client)
    token = tokens["access_token"]
    proof = await factor_change_proof(client, token)
    options = (await client.post("/me/mfa/webauthn/options", json=proof, headers=bearer(token))).json()
    key = SoftAuthenticator()
    registered = await client.post(
        "/me/mfa/webauthn",
        json={"ceremony_id": options["ceremony_id"], "credential": key.create(options["options"]), "label": "mine"},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    listed = (await client.get("/me/mfa/webauthn", headers=bearer(token))).json()
    assert [(k["credential_id"], k["label"]) for k in listed] == [(registered.json()["credential_id"], "mine")]
    assert ("alert.factor_changed", "sms") in await _templates(client, account_id)

    # Removing it needs the same proof; afterwards login no longer offers it.
    path = f"/me/mfa/webauthn/{listed[0]['credential_id']}"
    refused = await client.request("DELETE", path, headers=bearer(token))
    assert refused.json()["code"] == "reauthentication_required"
    proof = await factor_change_proof(client, token)
    removed = await client.request("DELETE", path, json=proof, headers=bearer(token))
    assert removed.status_code == 200, removed.text
    assert "webauthn" not in removed.json()["factors"]
    assert (await client.get("/me/mfa/webauthn", headers=bearer(token))).json() == []
    changes = [t for t, _ in await _templates(client, account_id) if t == "alert.factor_changed"]
    assert len(changes) == 2
    answer = (await login(client, data["phone"])).json()
    assert "webauthn" not in (answer.get("methods") or [])


async def test_a_fresh_aal2_login_may_change_factors_without_the_password(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    proof = await factor_change_proof(client, tokens["access_token"])
    started = (await client.post("/me/mfa/totp", json=proof, headers=bearer(tokens["access_token"]))).json()
    totp = pyotp.parse_uri(started["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    confirm = {"code": totp.now()}
    assert (await client.post("/me/mfa/totp/confirm", json=confirm, headers=bearer(tokens["access_token"]))).is_success
    challenge = (await login(client, data["phone"])).json()
    done = await client.post(
        "/public/login/challenge/verify",
        json={"challenge": challenge["challenge"], "method": "otp", "code": totp.at(time.time() + 30)},
    )
    fresh = done.json()
    assert fresh["acr"] == "aal2"
    options = await client.post("/me/mfa/webauthn/options", headers=bearer(fresh["access_token"]))
    assert options.status_code == 200, options.text


async def test_the_totp_entry_is_labelled_with_the_masked_phone(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    proof = await factor_change_proof(client, tokens["access_token"])
    started = (await client.post("/me/mfa/totp", json=proof, headers=bearer(tokens["access_token"]))).json()
    totp = pyotp.parse_uri(started["otpauth_uri"])
    assert totp.name == data["phone"][:3] + "****" + data["phone"][-4:]
    assert data["phone"] not in started["otpauth_uri"]


async def test_reset_and_login_codes_never_go_to_an_unverified_contact(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    """The registration's e-mail was never verified (as an attacker's e-mail put on the account would be)."""
    account_id, data, _ = await signed_in(client)
    await client.post("/public/password/reset/start", json={"identifier": data["phone"], "channel": "email"})
    assert not any(t.startswith("code.password.reset") for t, _ in await _templates(client, account_id))
    await client.post("/public/password/reset/start", json={"identifier": data["phone"], "channel": "sms"})
    assert ("code.password.reset", "sms") in await _templates(client, account_id)
    # A login challenge offers only the verified phone, and refuses to send to the e-mail.
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(Account).where(Account.id == uuid.UUID(account_id)).values(risk_level="high", restrictions={})
        )
        await session.commit()
    challenge = (await login(client, data["phone"], device_id="attacker-laptop")).json()
    assert challenge["status"] == "mfa_required"
    assert "email" not in challenge["methods"]
    sent = await client.post(
        "/public/login/challenge/send", json={"challenge": challenge["challenge"], "channel": "email"}
    )
    assert sent.status_code == 400
    # Once verified, the e-mail is a channel like the phone.
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(CustomerProfile)
            .where(CustomerProfile.account_id == uuid.UUID(account_id))
            .values(email_verified_at=CustomerProfile.phone_verified_at)
        )
        await session.commit()
    await client.post("/public/password/reset/start", json={"identifier": data["email"], "channel": "email"})
    assert ("code.password.reset", "email") in await _templates(client, account_id)


async def test_a_wrong_current_password_is_a_403_that_costs_a_step_up_and_counts(client: httpx.AsyncClient) -> None:
    account_id, _, tokens = await signed_in(client)
    token = tokens["access_token"]
    change = {"current_password": "Guess-Number-1!", "new_password": "Fresh-Meadow-93-Kettle!"}
    # Without a step-up nothing about the password is revealed.
    first = await client.post("/me/password", json=change, headers=bearer(token))
    assert (first.status_code, first.json()["code"]) == (403, "step_up_required")
    await client.post("/me/step-up/send", json={"action": "password.change", "channel": "sms"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:password.change")
    await client.post(
        "/me/step-up", json={"action": "password.change", "method": "sms", "code": code}, headers=bearer(token)
    )
    wrong = await client.post("/me/password", json=change, headers=bearer(token))
    assert (wrong.status_code, wrong.json()["code"]) == (403, "wrong_current_password")
    # The step-up was spent on the guess, and the failure counted.
    again = await client.post("/me/password", json=change, headers=bearer(token))
    assert again.json()["code"] == "step_up_required"
    assert (await client.get("/me/account", headers=bearer(token))).json()["failed_count"] == 1


async def test_registration_answers_the_same_for_known_details_and_tells_the_holder(
    client: httpx.AsyncClient,
) -> None:
    """Issue 13 item 12: a known phone, e-mail or ID number gets the answer a new one gets; the decoy id
    verifies nothing; the real holder hears of it on their verified channel."""
    from tests.identity.support import customer_data

    account_id, data, _ = await signed_in(client)
    fresh = await client.post("/public/register", json=customer_data())
    for field in ("phone", "email", "id_number"):
        squat = await client.post("/public/register", json=customer_data(**{field: data[field]}))
        assert squat.status_code == fresh.status_code == 201
        assert set(squat.json()) == set(fresh.json())
        assert squat.json()["verification_sent"] == fresh.json()["verification_sent"]
        decoy = squat.json()["account_id"]
        verify = await client.post(
            "/public/register/verify", json={"account_id": decoy, "channel": "sms", "code": "123456"}
        )
        assert (verify.status_code, verify.json()["code"]) == (400, "invalid_code")
    alerts = [(t, c) for t, c in await _templates(client, account_id) if t == "alert.registration_attempt"]
    assert alerts == [("alert.registration_attempt", "sms")] * 3
