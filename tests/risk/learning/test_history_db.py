"""``train --from-db`` reads the history the risk engine stores (imported here), before the test window's end."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from kit.db import create_database
from services.risk.cli import import_history
from services.risk.history.schemas import PRESETS, ImportOptions
from services.risk.learning.history import read_history_db
from tests.risk.conftest import T0, settings
from tests.risk.history.test_import import fdh_file
from tests.support.database import TestDatabases


async def test_training_reads_the_imported_history_until_the_window_end(
    tmp_path: Path, test_databases: TestDatabases
) -> None:
    url = await test_databases.clone("risk_learn_db")
    customer, terminal = uuid.uuid4().hex[:8], "T" + uuid.uuid4().hex[:6]
    path = fdh_file(tmp_path / "tx.csv.gz", customer, terminal)
    await import_history(path, ImportOptions(mapping=PRESETS["fdh"]), settings(url), quiet=True)
    database = create_database(settings(url), pool_size=1)
    try:
        async with database.sessionmaker() as session:
            until = T0 - timedelta(days=10) + timedelta(hours=2)
            events = [event async for event in read_history_db(session, until=until)]
    finally:
        await database.dispose()
    assert [event.transaction_id for event in events] == [f"{customer}-0", f"{customer}-1"]
    assert events[0].customer_id == f"acct:{customer}"
    assert events[0].label == "genuine"
