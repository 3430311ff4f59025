"""History import: the CLI (fdh-style export through a mapping, gzip, re-run safe) and the staff API;
imported history feeds the baselines and the events training reads, in event order."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from ops.database import with_database
from services.risk.cli import import_history, main
from services.risk.history.repository import history_events
from services.risk.history.schemas import PRESETS, ImportOptions
from tests.risk.conftest import T0, Risk, settings
from tests.support.database import TestDatabases


def fdh_file(path: Path, customer: str, terminal: str) -> Path:
    lines = ["transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_fraud"]
    # Written out of order on purpose: the events come back in occurred_at order.
    for i in (3, 1, 2, 0):
        when = (T0 - timedelta(days=10) + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{customer}-{i},{when},{customer},{terminal},{12.5 + i},{1 if i == 2 else 0}")
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


async def test_the_cli_imports_an_fdh_export_once_and_training_reads_it_in_event_order(
    tmp_path: Path, test_databases: TestDatabases
) -> None:
    url = await test_databases.clone("risk_hist")
    customer, terminal = uuid.uuid4().hex[:8], "T" + uuid.uuid4().hex[:6]
    path = fdh_file(tmp_path / "tx.csv.gz", customer, terminal)
    options = ImportOptions(mapping=PRESETS["fdh"])
    first = await import_history(path, options, settings(url), quiet=True)
    assert first.model_dump() == {"read": 4, "inserted": 4, "already_stored": 0, "labelled": 4}
    again = await import_history(path, options, settings(url), quiet=True)
    assert again.inserted == 0
    assert again.already_stored == 4

    from kit.db import create_database

    database = create_database(settings(url), pool_size=1)
    try:
        async with database.sessionmaker() as session:
            events = [e async for e in history_events(session)]
    finally:
        await database.dispose()
    assert [e.transaction_id for e in events] == [f"{customer}-{i}" for i in range(4)]
    third = events[2]
    assert third.customer_id == f"acct:{customer}"
    assert third.payee == terminal
    assert third.amount_minor == 1450
    assert third.label == "fraud"
    assert third.labelled_at == third.occurred_at + timedelta(days=7)
    assert events[0].label == "genuine"


def test_the_cli_command_line_reads_the_mapping(tmp_path: Path, monkeypatch: object) -> None:
    import argparse

    from services.risk.cli import options_of

    args = argparse.Namespace(
        preset="fdh",
        map=["payee=merchant"],
        amount_scale=100,
        currency="CNY",
        kind="card_payment",
        label_delay_days=3.0,
    )
    options = options_of(args)
    assert options.mapping["payee"] == "merchant"
    assert options.mapping["occurred_at"] == "tx_datetime"
    assert options.label_delay_days == 3.0
    assert callable(main)


def test_the_cli_names_a_database_without_risk_s_tables_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], test_databases: TestDatabases
) -> None:
    """An operator who forgot RISK_DATABASE_URL gets the database and the reason, not a traceback of the batch."""
    monkeypatch.setenv("RISK_DATABASE_URL", with_database(test_databases.server_url, "no_such_risk_database"))
    monkeypatch.setenv("SUITE_ENVIRONMENT", "test")
    path = fdh_file(tmp_path / "tx.csv.gz", "c1", "T1")
    assert main(["import-history", str(path), "--preset", "fdh", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "import-history: risk's database" in err
    assert "RISK_DATABASE_URL" in err
    assert "Traceback" not in err


async def test_staff_import_small_files_and_scoring_uses_the_imported_baselines(risk: Risk) -> None:
    account = "acct" + uuid.uuid4().hex[:8]
    header = "ref,when,acct,merchant,amount_minor,label\n"
    rows = "".join(
        f"{account}-{i},{(T0 - timedelta(minutes=50 - i)).isoformat()},{account},shop-1,{1000 + i},genuine\n"
        for i in range(6)
    )
    mapping = {"transaction_id": "ref", "occurred_at": "when", "account_id": "acct", "payee": "merchant"}
    response = await risk.client.post(
        "/staff/history/imports",
        params={"mapping": json.dumps(mapping)},
        content=header + rows,
        headers={**risk.staff(), "content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 6
    scored = await risk.score(account_id=account, payee="shop-1", occurred_at=T0)
    codes = {r["code"] for r in scored["reasons"]}
    assert "velocity_1h" in codes  # six imported transactions in the past hour
    assert "new_payee" not in codes
    bad = await risk.client.post(
        "/staff/history/imports",
        content="id,amount\n1,2\n",
        headers={**risk.staff(), "content-type": "text/csv"},
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_import"
    # A scored transaction whose id was imported takes its decision once.
    repeat = await risk.score(transaction_id=f"{account}-0", account_id=account, payee="shop-1", occurred_at=T0)
    assert repeat["decision"] in {"allow", "step_up"}
    assert (await risk.score(transaction_id=f"{account}-0", account_id=account))["score"] == repeat["score"]
