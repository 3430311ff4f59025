"""History files (handbook and suite columns), and the training command end to end."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from kit.db import create_database
from services.risk.config import RiskSettings
from services.risk.learning.cli import main, parser, train
from services.risk.learning.history import BadHistory, read_history, read_rows, to_minor
from services.risk.models import ModelVersion
from tests.risk.learning.synthetic import START, stream


def test_handbook_rows_become_card_payments_labelled_a_week_later(tmp_path: Path) -> None:
    path = tmp_path / "fdh.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_fraud\n")
        handle.write("0,2018-04-01T00:00:31,596,3156,57.16,0\n1,2018-04-01T00:02:10,4961,3412,81.5,1\n")
    first, second = list(read_history(path))
    assert first.amount_minor == 5716
    assert second.amount_minor == 8150
    assert first.occurred_at == datetime(2018, 4, 1, 0, 0, 31, tzinfo=UTC)
    assert (first.customer_id, first.payee, first.kind, first.label) == ("596", "3156", "card_payment", "genuine")
    assert second.label == "fraud"
    assert second.labelled_at == second.occurred_at + timedelta(days=7)


def test_suite_rows_with_optional_columns() -> None:
    rows = io.StringIO(
        "transaction_id,account_id,customer_id,payee,amount_minor,occurred_at,kind,channel,device_id,label,labelled_at\n"
        "t1,acc-1,,DE89,120000,2026-01-02T10:00:00+08:00,transfer,web,dev-1,fraud,2026-01-05T00:00:00Z\n"
        "t2,acc-2,cust-2,DE90,500,2026-01-02T11:00:00Z,bill_payment,mobile,,,\n"
    )
    one, two = list(read_rows(rows))
    assert one.customer_id == "acc-1"  # the account stands in for an unknown customer
    assert one.occurred_at == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    assert (one.label, one.labelled_at) == ("fraud", datetime(2026, 1, 5, tzinfo=UTC))
    assert (two.customer_id, two.device_id, two.region, two.label, two.labelled_at) == (
        "cust-2",
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "body",
    [
        "a,b,c\n1,2,3\n",
        "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_fraud\n0,2018-04-01T00:00:31,1,2,1.005,0\n",
        "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_fraud\n0,yesterday,1,2,1.00,0\n",
        "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_fraud\n0,2018-04-01T00:00:31,1,2,1.00,maybe\n",
        "transaction_id,customer_id,payee,amount_minor,occurred_at,kind,channel,label\n"
        "t,c,p,100,2026-01-01T00:00:00Z,transfer,web,stolen\n",
        "transaction_id,customer_id,payee,amount_minor,occurred_at,kind,channel\nt,c,p,-5,2026-01-01T00:00:00Z,transfer,web\n",
    ],
)
def test_unreadable_history_is_refused_with_its_line(body: str) -> None:
    with pytest.raises(BadHistory):
        list(read_rows(io.StringIO(body)))


def test_amounts_are_converted_exactly() -> None:
    assert to_minor("0.1") == 10
    assert to_minor("1234567.89") == 123456789
    assert to_minor("19.99") == 1999
    with pytest.raises(BadHistory):
        to_minor("abc")


def write_suite_csv(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["transaction_id", "customer_id", "payee", "amount_minor", "occurred_at", "kind", "channel",
                      "label", "labelled_at"])  # fmt: skip
        for e in stream():
            labelled = e.labelled_at.isoformat() if e.labelled_at else ""
            at = e.occurred_at.isoformat()
            out.writerow([e.transaction_id, e.customer_id, e.payee, e.amount_minor, at, e.kind, e.channel,
                          e.label or "", labelled])  # fmt: skip


WINDOW_ARGS = [
    "--train-from", START.isoformat(),
    "--train-to", (START + timedelta(days=40)).isoformat(),
    "--test-from", (START + timedelta(days=40)).isoformat(),
    "--test-to", (START + timedelta(days=60)).isoformat(),
    "--rounds", "30",
]  # fmt: skip


def risk_settings(url: str) -> RiskSettings:
    return RiskSettings(environment="test", database_url=SecretStr(url), log_json=False)


async def registered(url: str) -> list[ModelVersion]:
    database = create_database(risk_settings(url), pool_size=1)
    try:
        async with database.sessionmaker() as session:
            return list((await session.execute(select(ModelVersion))).scalars())
    finally:
        await database.dispose()


def run_in_thread(args: list[str], url: str) -> int:
    """The command runs its own event loop (asyncio.run), so it runs beside the test's."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(train, parser().parse_args(args), risk_settings(url)).result()


async def test_train_from_csv_registers_an_evaluated_candidate(
    tmp_path: Path, fresh_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "history.csv"
    write_suite_csv(path)
    out = tmp_path / "model.txt"
    args = ["train", "--from", str(path), *WINDOW_ARGS, "--by", "analyst-1", "--out", str(out)]
    assert run_in_thread(args, fresh_database_url) == 0
    (version,) = await registered(fresh_database_url)
    assert version.state == "candidate"
    assert version.created_by == "analyst-1"
    assert version.metrics is not None
    assert version.metrics["average_precision"] > 0.3
    assert out.read_bytes().startswith(b"tree\n")
    assert version.sha256 in (tmp_path / "model.txt.sha256").read_text()
    assert "registered candidate m" in capsys.readouterr().out


def test_bad_input_is_an_error_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("what,is,this\n")
    assert main(["train", "--from", str(path), *WINDOW_ARGS, "--no-register"]) == 2
    assert "unknown header" in capsys.readouterr().err
    backwards = [*WINDOW_ARGS]
    backwards[5] = START.isoformat()  # the test window starts before training ends
    assert main(["train", "--from", str(path), *backwards, "--no-register"]) == 2
