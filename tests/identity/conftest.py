"""Fixtures of the identity tests: one app per module on its own database, driven in process.

The vault is the real vault app on a database of its own, wired to identity in process
(``tests/identity/inprocess.py``): personal data really goes there and comes back from there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.identity.fakes import FakePermissions
from tests.identity.inprocess import Wiring, wire
from tests.support.database import TestDatabases
from tests.support.suite import build_service


@pytest.fixture(scope="module")
async def identity_db(test_databases: TestDatabases) -> str:
    return await test_databases.clone("identity")


@pytest.fixture(scope="module")
async def vault_db(test_databases: TestDatabases) -> str:
    return await test_databases.clone("identity_vault")


@pytest.fixture(scope="module")
async def vault_app(vault_db: str) -> AsyncIterator[FastAPI]:
    app = build_service("vault", vault_db, rewrap_enabled=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def identity_app(identity_db: str, vault_app: FastAPI) -> AsyncIterator[FastAPI]:
    app = build_service("identity", identity_db, risk_scoring_enabled=False, outbox_enabled=False)
    async with app.router.lifespan_context(app):
        app.state.permission_client = FakePermissions()
        async for wiring in wire(app, vault_app):
            app.state.test_wiring = wiring
            yield app


@pytest.fixture
def wiring(identity_app: FastAPI) -> Wiring:
    wired: Wiring = identity_app.state.test_wiring
    return wired


@pytest.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity.test") as c:
        yield c


@pytest.fixture
def permissions(identity_app: FastAPI) -> FakePermissions:
    fake: FakePermissions = identity_app.state.permission_client
    return fake
