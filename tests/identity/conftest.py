"""Fixtures of the identity tests: one app per module on its own database, driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.identity.fakes import FakePermissions
from tests.support.database import TestDatabases
from tests.support.suite import build_service


@pytest.fixture(scope="module")
async def identity_db(test_databases: TestDatabases) -> str:
    return await test_databases.clone("identity")


@pytest.fixture(scope="module")
async def identity_app(identity_db: str) -> AsyncIterator[FastAPI]:
    app = build_service("identity", identity_db, risk_scoring_enabled=False, outbox_enabled=False)
    async with app.router.lifespan_context(app):
        app.state.permission_client = FakePermissions()
        yield app


@pytest.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity.test") as c:
        yield c


@pytest.fixture
def permissions(identity_app: FastAPI) -> FakePermissions:
    fake: FakePermissions = identity_app.state.permission_client
    return fake
