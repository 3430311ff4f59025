"""`make codes` (python -m ops.dev_codes): a newcomer reads the development codes with one command."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from ops.dev_codes import code_in, sent_codes
from tests.identity.support import customer_data
from tests.support.database import TestDatabases
from tests.support.live import LiveSuite, live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
async def suite(test_databases: TestDatabases) -> AsyncIterator[LiveSuite]:
    url = await test_databases.clone("suite_dev_codes")
    async with live_suite(suite_factories(url, services=("identity", "vault"))) as running:
        yield running


async def run_command(*args: str, gateway: str) -> tuple[int, str, str]:
    """The command as a newcomer runs it: its own process, nothing but the gateway's address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUITE_")}
    env["SUITE_GATEWAY_URL"] = gateway
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ops.dev_codes",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_prints_the_codes_a_registration_sent_and_they_work(suite: LiveSuite) -> None:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as client:
        registered = await client.post("/v1/identity/public/register", json=customer_data())
        assert registered.status_code == 201, registered.text
        account_id = registered.json()["account_id"]

        # One command waits for the SMS code and prints only it ...
        status, out, err = await run_command(
            "--wait", "--account", account_id, "--template", "code.verify:sms", gateway=suite.gateway_url
        )
        assert status == 0, err
        sms_code = out.strip()
        # ... and the listing shows both codes the registration sent, with their channels.
        status, listing, err = await run_command("--account", account_id, gateway=suite.gateway_url)
        assert status == 0, err
        rows = [line for line in listing.splitlines() if account_id in line]
        assert {row.split()[1] for row in rows} == {"sms", "email"}
        assert any(sms_code in row and " sms " in row for row in rows)

        # The printed code is the one identity accepts.
        verified = await client.post(
            "/v1/identity/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": sms_code}
        )
        assert verified.status_code == 200, verified.text
        # The listing agrees with the sink itself.
        latest = [c for c in await sent_codes(client, account_id=account_id) if c.channel == "sms"]
        assert latest[0].code == sms_code


async def test_without_a_running_suite_it_says_so() -> None:
    status, _, err = await run_command("--limit", "1", gateway="http://127.0.0.1:9")
    assert status == 1
    assert "does not answer" in err


def test_the_code_is_found_in_each_message_body() -> None:
    assert code_in("Your Bank Suite code is 482913. It expires in 5 minutes. Never share it.") == "482913"
    assert code_in("A new device signed in on 2026-11-21.") is None
    assert code_in("We are handling a security incident on your account (reference efad4079).") is None
