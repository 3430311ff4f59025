"""Every service answers ``GET /internal/audit/verification`` (scope audit:verify) from its own chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from kit.audit import compute_hash, signing_key_from_secret
from services.risk.app import create
from services.risk.models import audit_log
from tests.support.suite import service_settings
from tests.support.tokens import TestIssuer

PATH = "/internal/audit/verification"


@pytest.fixture
async def app(fresh_database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = service_settings("risk", fresh_database_url, audit_checkpoint_file=str(tmp_path / "checkpoints.jsonl"))
    application = create(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def issuer(app: FastAPI) -> TestIssuer:
    issuer = TestIssuer()
    issuer.install(app)
    return issuer


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://risk") as c:
        yield c


async def append_entries(app: FastAPI, count: int) -> None:
    async with app.state.database.sessionmaker() as session:
        for n in range(count):
            await audit_log.append(session, actor="tester", action="demo.action", target=f"t-{n}")
        await session.commit()


async def checkpoint(app: FastAPI) -> None:
    key = signing_key_from_secret(app.state.settings.audit_signing_key.get_secret_value())
    async with app.state.database.sessionmaker() as session:
        await audit_log.checkpoint(session, key)
        await session.commit()


async def tamper(app: FastAPI, statement: str) -> None:
    """What an attacker with database access does: switch the append-only triggers off for one statement."""
    async with app.state.database.engine.begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(text(statement))


async def test_an_intact_chain_is_reported_ok_with_its_checkpoints(
    app: FastAPI, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    await append_entries(app, 3)
    await checkpoint(app)
    response = await client.get(PATH, headers=issuer.headers(kind="service", subject="incidents", scope="audit:verify"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["service"] == "risk"
    assert body["ok"] is True
    assert body["first_bad"] is None
    assert body["entries"] >= 3
    assert body["checkpoints"]["checked"] == 1
    assert body["checkpoints"]["latest_seq"] == body["entries"]


async def test_an_edited_entry_is_the_first_bad_one(
    app: FastAPI, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    await append_entries(app, 4)
    await tamper(app, "UPDATE risk.audit_entry SET target = 'someone-else' WHERE target = 't-1'")
    body = (
        await client.get(PATH, headers=issuer.headers(kind="service", subject="incidents", scope="audit:verify"))
    ).json()
    async with app.state.database.sessionmaker() as session:
        edited = (
            await session.execute(text("SELECT seq FROM risk.audit_entry WHERE target = 'someone-else'"))
        ).scalar()
    assert body["ok"] is False
    assert body["first_bad"] == {"seq": edited, "problem": "altered_entry"}
    assert body["entries"] == edited - 1


async def test_a_truncated_tail_behind_a_checkpoint_is_found(
    app: FastAPI, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    await append_entries(app, 3)
    await checkpoint(app)
    await tamper(app, "DELETE FROM risk.audit_entry WHERE seq = (SELECT max(seq) FROM risk.audit_entry)")
    body = (
        await client.get(PATH, headers=issuer.headers(kind="service", subject="incidents", scope="audit:verify"))
    ).json()
    assert body["ok"] is False
    assert body["first_bad"]["problem"] in {"truncated", "checkpoint_mismatch"}


async def test_the_route_needs_a_service_token_with_the_scope(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    assert (await client.get(PATH)).status_code == 401
    without_scope = await client.get(PATH, headers=issuer.headers(kind="service", subject="risk", scope="risk:read"))
    assert without_scope.status_code == 403
    staff = await client.get(PATH, headers=issuer.headers(kind="staff"))
    assert staff.status_code == 403


async def test_entries_are_exported_with_hashes_that_prove_themselves(
    app: FastAPI, client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    await append_entries(app, 5)
    headers = issuer.headers(kind="service", subject="incidents", scope="audit:verify")
    first = await client.get(
        "/internal/audit/entries", params={"seq_from": 1, "seq_to": 5, "limit": 3}, headers=headers
    )
    assert first.status_code == 200, first.text
    page = first.json()
    assert [e["seq"] for e in page["entries"]] == [1, 2, 3]
    assert page["next_seq"] == 4
    rest = (await client.get("/internal/audit/entries", params={"seq_from": 4, "seq_to": 5}, headers=headers)).json()
    entries = page["entries"] + rest["entries"]
    assert rest["next_seq"] is None
    previous = bytes(32)
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k not in ("prev_hash", "entry_hash")}
        assert entry["prev_hash"] == previous.hex()
        assert compute_hash(previous, fields).hex() == entry["entry_hash"]
        previous = bytes.fromhex(entry["entry_hash"])

    reversed_range = await client.get("/internal/audit/entries", params={"seq_from": 5, "seq_to": 1}, headers=headers)
    assert reversed_range.status_code == 400
    no_scope = issuer.headers(kind="service", subject="risk", scope="risk:read")
    assert (
        await client.get("/internal/audit/entries", params={"seq_from": 1, "seq_to": 2}, headers=no_scope)
    ).status_code == 403
