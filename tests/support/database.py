"""The test PostgreSQL: embedded by default, a server when TEST_DATABASE_URL is set.

Each pytest process (each xdist worker) builds one migrated template database
with a unique name, so concurrent runs on one server never collide. Tests get
either a transaction that is rolled back (``db_session``) or, when they must
commit (concurrency, outbox, live servers), a fresh clone of the template.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from ops.database import ROOT, asyncpg_url, create_database, drop_database, embedded_server_url, with_database

TEST_DATA_DIR = ROOT / ".data" / "pg-test"


def admin_server_url() -> str:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return asyncpg_url(configured)
    return embedded_server_url(Path(TEST_DATA_DIR))


def unique_name(prefix: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}_{worker}_{uuid.uuid4().hex[:10]}"


class TestDatabases:
    """Creates databases from the migrated template and drops them all at the end."""

    __test__ = False  # a fixture helper, not a test class

    def __init__(self, server_url: str, template: str) -> None:
        self.server_url = server_url
        self.template = template
        self.created: list[str] = []

    async def clone(self, prefix: str = "suite_test") -> str:
        name = unique_name(prefix)
        await create_database(self.server_url, name, template=self.template)
        self.created.append(name)
        return with_database(self.server_url, name)

    async def drop_all(self) -> None:
        for name in [*self.created, self.template]:
            await drop_database(self.server_url, name)
