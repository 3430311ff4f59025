"""Second factors: TOTP with replay refusal, SMS/email codes, recovery codes, WebAuthn, step-up."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI

from tests.identity.authenticator import SoftAuthenticator
from tests.identity.support import PASSWORD, bearer, factor_change_proof, latest_code, login, signed_in


async def _enrol_totp(client: httpx.AsyncClient, token: str) -> tuple[pyotp.TOTP, list[str]]:
    proof = await factor_change_proof(client, token)
    started = await client.post("/me/mfa/totp", json=proof, headers=bearer(token))
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert body["qr_svg"].startswith("data:image/svg+xml;base64,")
    totp = pyotp.parse_uri(body["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    confirmed = await client.post("/me/mfa/totp/confirm", json={"code": totp.now()}, headers=bearer(token))
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["recovery_codes"]
    return totp, codes


def _next_step_code(totp: pyotp.TOTP) -> str:
    """The code of the next time step (inside the one-step window, and not yet used)."""
    return totp.at(time.time() + 30)


async def test_totp_enrolment_then_login_needs_it_and_a_code_works_once(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    totp, recovery = await _enrol_totp(client, tokens["access_token"])
    assert len(recovery) == 10
    challenge = (await login(client, data["phone"])).json()
    assert challenge["status"] == "mfa_required"
    assert challenge["methods"][0] == "otp"
    code = _next_step_code(totp)
    done = await client.post(
        "/public/login/challenge/verify", json={"challenge": challenge["challenge"], "method": "otp", "code": code}
    )
    assert done.status_code == 200, done.text
    assert (done.json()["acr"], done.json()["amr"]) == ("aal2", ["pwd", "otp"])
    # The same code on a new login is a replay.
    again = (await login(client, data["phone"])).json()
    replay = await client.post(
        "/public/login/challenge/verify", json={"challenge": again["challenge"], "method": "otp", "code": code}
    )
    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_code"


async def test_an_older_code_than_the_last_used_one_is_refused(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    totp, _ = await _enrol_totp(client, tokens["access_token"])
    challenge = (await login(client, data["phone"])).json()["challenge"]
    ok = await client.post(
        "/public/login/challenge/verify",
        json={"challenge": challenge, "method": "otp", "code": _next_step_code(totp)},
    )
    assert ok.status_code == 200
    challenge = (await login(client, data["phone"])).json()["challenge"]
    current = await client.post(
        "/public/login/challenge/verify", json={"challenge": challenge, "method": "otp", "code": totp.now()}
    )
    assert current.status_code == 400


async def test_wrong_second_factors_count_toward_the_lockout(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    totp, _ = await _enrol_totp(client, tokens["access_token"])
    challenge = (await login(client, data["phone"])).json()["challenge"]
    for _ in range(4):
        await client.post(
            "/public/login/challenge/verify", json={"challenge": challenge, "method": "otp", "code": "000000"}
        )
    # Locked: even the password step fails now, like any failed login.
    assert (await login(client, data["phone"])).status_code == 401
    assert totp.now()


async def test_sms_code_completes_a_challenge_once(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data, tokens = await signed_in(client)
    await _enrol_totp(client, tokens["access_token"])
    challenge = (await login(client, data["phone"])).json()
    assert "sms" in challenge["methods"]
    sent = await client.post(
        "/public/login/challenge/send", json={"challenge": challenge["challenge"], "channel": "sms"}
    )
    assert sent.status_code == 200
    code = await latest_code(client, account_id, "code.login")
    body = {"challenge": challenge["challenge"], "method": "sms", "code": code}
    done = await client.post("/public/login/challenge/verify", json=body)
    assert done.status_code == 200, done.text
    assert done.json()["amr"] == ["pwd", "sms"]
    assert (await client.post("/public/login/challenge/verify", json=body)).status_code == 401  # challenge used


async def test_sms_codes_allow_few_attempts(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data, tokens = await signed_in(client)
    await _enrol_totp(client, tokens["access_token"])
    send = await client.post(
        "/me/step-up/send", json={"action": "mfa.remove", "channel": "sms"}, headers=bearer(tokens["access_token"])
    )
    assert send.status_code == 200
    code = await latest_code(client, account_id, "code.step_up")
    settings = identity_app.state.identity.settings
    statuses = []
    for _ in range(settings.otp_max_attempts):
        wrong = await client.post(
            "/me/step-up",
            json={"action": "mfa.remove", "method": "sms", "code": "999999" if code != "999999" else "000000"},
            headers=bearer(tokens["access_token"]),
        )
        statuses.append(wrong.status_code)
    # Wrong codes count toward the lockout; a locked account steps up no more (issue 13 item 11).
    locked_after = settings.lockout_threshold + 1
    assert statuses[:locked_after] == [400] * locked_after
    assert set(statuses[locked_after:]) <= {403}
    exhausted = await client.post(
        "/me/step-up",
        json={"action": "mfa.remove", "method": "sms", "code": code},
        headers=bearer(tokens["access_token"]),
    )
    assert exhausted.status_code in (403, 429)
    assert data


async def test_recovery_codes_are_single_use(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    _, recovery = await _enrol_totp(client, tokens["access_token"])
    challenge = (await login(client, data["phone"])).json()["challenge"]
    body = {"challenge": challenge, "method": "recovery", "code": recovery[0]}
    assert (await client.post("/public/login/challenge/verify", json=body)).status_code == 200
    challenge = (await login(client, data["phone"])).json()["challenge"]
    body = {"challenge": challenge, "method": "recovery", "code": recovery[0]}
    assert (await client.post("/public/login/challenge/verify", json=body)).status_code == 400


async def _step_up(client: httpx.AsyncClient, token: str, totp: pyotp.TOTP, action: str) -> httpx.Response:
    return await client.post(
        "/me/step-up", json={"action": action, "method": "otp", "code": _next_step_code(totp)}, headers=bearer(token)
    )


async def test_step_up_is_bound_to_its_action_and_used_once(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    token = tokens["access_token"]
    totp, _ = await _enrol_totp(client, token)
    change = {"current_password": PASSWORD, "new_password": "Fresh-Meadow-93-Kettle!"}
    assert (await client.post("/me/password", json=change, headers=bearer(token))).json()["code"] == "step_up_required"
    assert (await _step_up(client, token, totp, "mfa.recovery_codes")).status_code == 201
    # A step-up for another action does not open this one.
    refused = await client.post("/me/password", json=change, headers=bearer(token))
    assert refused.status_code == 403
    codes = await client.post("/me/mfa/recovery-codes", headers=bearer(token))
    assert codes.status_code == 200
    assert len(codes.json()["recovery_codes"]) == 10
    assert (await client.post("/me/mfa/recovery-codes", headers=bearer(token))).status_code == 403


async def test_password_change_needs_a_step_up_revokes_other_sessions_and_notifies(
    client: httpx.AsyncClient,
) -> None:
    account_id, data, tokens = await signed_in(client)
    token = tokens["access_token"]
    other = (await login(client, data["phone"])).json()
    await client.post("/me/step-up/send", json={"action": "password.change", "channel": "sms"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:password.change")
    granted = await client.post(
        "/me/step-up", json={"action": "password.change", "method": "sms", "code": code}, headers=bearer(token)
    )
    assert granted.status_code == 201
    reused = {"current_password": PASSWORD, "new_password": PASSWORD}
    assert (await client.post("/me/password", json=reused, headers=bearer(token))).json()["code"] == "password_reused"
    change = {"current_password": PASSWORD, "new_password": "Fresh-Meadow-93-Kettle!"}
    changed = await client.post("/me/password", json=change, headers=bearer(token))
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"changed": True, "other_sessions_revoked": 1}
    assert (await client.get("/me/account", headers=bearer(other["access_token"]))).status_code == 401
    assert (await client.get("/me/account", headers=bearer(token))).status_code == 200
    assert (await login(client, data["phone"], "Fresh-Meadow-93-Kettle!")).status_code == 200
    from tests.identity.support import sink

    assert any(m["template"] == "alert.password_changed" for m in await sink(client, account_id))


async def test_weak_passwords_are_refused(client: httpx.AsyncClient) -> None:
    from tests.identity.support import customer_data

    for weak in ("Password123!", "short1A!", "alllowercase-but-long-enough", "Qwerty123456!"):
        response = await client.post("/public/register", json=customer_data(password=weak))
        assert response.status_code == 400, weak
        assert response.json()["code"] == "weak_password"
        assert weak not in response.text


async def _register_key(client: httpx.AsyncClient, token: str) -> tuple[SoftAuthenticator, dict[str, Any]]:
    authenticator = SoftAuthenticator()
    proof = await factor_change_proof(client, token)
    options = (await client.post("/me/mfa/webauthn/options", json=proof, headers=bearer(token))).json()
    registered = await client.post(
        "/me/mfa/webauthn",
        json={"ceremony_id": options["ceremony_id"], "credential": authenticator.create(options["options"])},
        headers=bearer(token),
    )
    assert registered.status_code == 201, registered.text
    return authenticator, registered.json()


async def test_webauthn_register_and_log_in_at_aal2(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    authenticator, registered = await _register_key(client, tokens["access_token"])
    assert registered["recovery_codes"]
    challenge = (await login(client, data["phone"])).json()
    assert challenge["methods"][0] == "webauthn"
    options = (
        await client.post("/public/login/challenge/webauthn-options", json={"challenge": challenge["challenge"]})
    ).json()["options"]
    done = await client.post(
        "/public/login/challenge/verify",
        json={"challenge": challenge["challenge"], "method": "webauthn", "credential": authenticator.get(options)},
    )
    assert done.status_code == 200, done.text
    # A software passkey with `none` attestation is a second factor, not aal3 (issue 13 item 19).
    assert (done.json()["acr"], done.json()["amr"]) == ("aal2", ["pwd", "webauthn"])


async def test_webauthn_refuses_wrong_origin_cloned_counter_and_foreign_challenge(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    authenticator, _ = await _register_key(client, tokens["access_token"])

    async def attempt(**kwargs: Any) -> int:
        challenge = (await login(client, data["phone"])).json()["challenge"]
        options = (await client.post("/public/login/challenge/webauthn-options", json={"challenge": challenge})).json()[
            "options"
        ]
        if kwargs.pop("foreign", False):
            options = {**options, "challenge": "AAAAAAAAAAAAAAAAAAAAAA"}
        response = await client.post(
            "/public/login/challenge/verify",
            json={"challenge": challenge, "method": "webauthn", "credential": authenticator.get(options, **kwargs)},
        )
        return response.status_code

    assert await attempt(origin="https://phishing.example") == 400
    assert await attempt(foreign=True) == 400
    assert await attempt(count=5) == 200
    assert await attempt(count=5) == 400  # the counter did not grow: a cloned key


async def test_guessing_step_up_codes_locks_the_account(client: httpx.AsyncClient) -> None:
    _, data, tokens = await signed_in(client)
    token = tokens["access_token"]
    await _enrol_totp(client, token)
    for guess in ("000000", "111111", "222222", "333333"):
        wrong = await client.post(
            "/me/step-up", json={"action": "mfa.remove", "method": "otp", "code": guess}, headers=bearer(token)
        )
        assert wrong.status_code == 400
    assert (await login(client, data["phone"])).status_code == 401


async def test_step_up_with_a_security_key(client: httpx.AsyncClient) -> None:
    _, _, tokens = await signed_in(client)
    token = tokens["access_token"]
    authenticator, _ = await _register_key(client, token)
    ceremony = (await client.post("/me/step-up/webauthn-options", headers=bearer(token))).json()
    assertion = authenticator.get(ceremony["options"])
    body = {"action": "password.change", "method": "webauthn", "credential": assertion}
    granted = await client.post("/me/step-up", json=body, headers=bearer(token))
    assert granted.status_code == 201, granted.text
    # The ceremony is spent: the same assertion cannot buy a second grant.
    assert (await client.post("/me/step-up", json=body, headers=bearer(token))).status_code == 400
    change = {"current_password": PASSWORD, "new_password": "Fresh-Meadow-93-Kettle!"}
    assert (await client.post("/me/password", json=change, headers=bearer(token))).status_code == 200
