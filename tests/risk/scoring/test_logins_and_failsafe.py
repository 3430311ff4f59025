"""Login scoring (identity's contract) and the fail-safe answers when the state store is gone."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tests.risk.conftest import Risk, new_id


async def test_a_plain_login_is_allowed_and_risky_signals_are_challenged(risk: Risk) -> None:
    calm = await risk.login(signals=[])
    assert calm["decision"] == "allow"
    assert set(calm) >= {"decision", "reasons"}
    risky = await risk.login(signals=["impossible_travel"])
    assert risky["decision"] == "challenge"
    assert "impossible_travel" in risky["reasons"]


async def test_a_login_from_a_blocked_ip_is_denied_and_reported(risk: Risk) -> None:
    ip = f"192.0.2.{uuid.uuid4().int % 250}"
    await risk.client.post(
        "/internal/lists/ip/entries",
        json={"value": ip, "verdict": "block", "reason": "c2"},
        headers=risk.service("incidents"),
    )
    account = new_id()
    denied = await risk.login(account_id=account, ip=ip)
    assert denied["decision"] == "deny"
    assert "blocked_ip" in denied["reasons"]
    reports = await risk.outbox_rows(f"risk-login:{account}:%")
    assert reports[0]["payload"]["type"] == "login_anomaly"


@pytest.fixture
def database_gone(risk: Risk) -> object:
    real = risk.app.state.database
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
    risk.app.state.database = SimpleNamespace(sessionmaker=async_sessionmaker(engine), engine=engine)
    yield
    risk.app.state.database = real


async def test_without_the_state_store_a_transaction_is_never_waved_through(risk: Risk, database_gone: object) -> None:
    small = await risk.score(amount_minor=100)
    assert small["decision"] == "step_up"
    assert "state_unavailable" in {r["code"] for r in small["reasons"]}
    large = await risk.score(amount_minor=11_000_000, kind="crypto_withdrawal")
    assert large["decision"] == "block"  # the rules still answer from the transaction alone
    login = await risk.login()
    assert login["decision"] == "challenge"
