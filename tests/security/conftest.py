"""The running suite the authorisation matrix and the fuzzing run share (started once for the package)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.security.support import Callers, RunningService, running_services
from tests.support.database import TestDatabases


@pytest.fixture(scope="package")
async def suite(test_databases: TestDatabases) -> AsyncIterator[tuple[dict[str, RunningService], Callers]]:
    async with running_services(test_databases) as running:
        yield running
