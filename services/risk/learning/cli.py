"""Training command: ``python -m services.risk.learning.cli train ...``.

Reads labelled history (a CSV file, see :mod:`services.risk.learning.history`, or the
stored history with ``--from-db``), replays it in event time, fits the model on the
training window, evaluates it on the later test window, and registers it as a
**candidate** in the model registry with its figures and file hash. Promotion is a
separate, approved step (staff API). ``--out`` also writes the model file and its
``.sha256`` next to it.

    python -m services.risk.learning.cli train --from history.csv.gz \\
        --train-from 2018-04-01 --train-to 2018-07-01 --test-from 2018-07-01 --test-to 2018-08-01
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from kit.db import create_database
from services.risk.config import RiskSettings
from services.risk.learning import service
from services.risk.learning.evaluation import NotEvaluable
from services.risk.learning.features import HistoryEvent
from services.risk.learning.history import BadHistory, parse_time, read_history, read_history_db
from services.risk.learning.training import DEFAULT_ROUNDS, BadWindows, TrainingResult, Windows, train_and_evaluate


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m services.risk.learning.cli", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train, evaluate on a later window, register a candidate")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source", type=Path, metavar="CSV", help="history file (.csv or .csv.gz)")
    source.add_argument("--from-db", action="store_true", help="risk's stored transactions")
    for name in ("train-from", "train-to", "test-from", "test-to"):
        train.add_argument(f"--{name}", type=_time, required=True, metavar="TIME")
    train.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="boosting rounds")
    train.add_argument("--by", default=f"cli:{getpass.getuser()}", help="who trains (recorded)")
    train.add_argument("--note", default="", help="free text kept with the version")
    train.add_argument("--out", type=Path, help="also write the model file (and FILE.sha256) here")
    train.add_argument("--no-register", action="store_true", help="evaluate only, register nothing")
    return root


async def _events_from_db(settings: RiskSettings, until: datetime) -> list[HistoryEvent]:
    database = create_database(settings, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            return [event async for event in read_history_db(session, until=until)]
    finally:
        await database.dispose()


async def _register(settings: RiskSettings, result: TrainingResult, *, by: str, note: str) -> str:
    database = create_database(settings, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            version = await service.register(session, result, created_by=by, note=note)
            await session.commit()
            return f"{version.version} ({version.id})"
    finally:
        await database.dispose()


def train(args: argparse.Namespace, settings: RiskSettings | None = None) -> int:
    windows = Windows(args.train_from, args.train_to, args.test_from, args.test_to)
    settings = settings or RiskSettings()
    if args.from_db:
        events = asyncio.run(_events_from_db(settings, windows.test_to))
    else:
        events = list(read_history(args.source))
    print(f"{len(events)} transactions read; replaying and training", flush=True)
    result = train_and_evaluate(events, windows, rounds=args.rounds)
    m = result.metrics
    print(
        f"trained on {result.train_rows} transactions ({result.train_frauds} frauds); "
        f"test window {m.transactions} transactions ({m.frauds} frauds): "
        f"AP {m.average_precision:.4f}, recall at 1% FPR {m.recall_at_1pct_fpr:.4f}, "
        f"card precision at 100/day {m.card_precision_at_100:.4f}"
    )
    print(f"model sha256 {result.sha256} ({len(result.model)} bytes)")
    if args.out is not None:
        args.out.write_bytes(result.model)
        args.out.with_name(args.out.name + ".sha256").write_text(f"{result.sha256}  {args.out.name}\n")
    if not args.no_register:
        registered = asyncio.run(_register(settings, result, by=args.by, note=args.note))
        print(f"registered candidate {registered}; promote it through the staff API with an approval")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return train(args)
    except (BadHistory, BadWindows, NotEvaluable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
