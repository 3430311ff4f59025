"""Operator commands: ``python -m services.risk.cli <command>``.

- ``import-history FILE [--preset fdh] [--map ours=theirs ...] [--amount-scale 100] [--currency CNY]
  [--kind card_payment] [--label-delay-days 7]``: import labelled transaction history from a CSV file
  (``.csv`` or ``.csv.gz``; columns in docs/risk.md), with a progress bar, in batches; a re-run adds
  nothing twice. ``--map payee=terminal_id`` reads our ``payee`` from the file's ``terminal_id``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import sys
from pathlib import Path
from typing import IO, cast

from asyncpg import PostgresError
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from kit.db import create_database
from services.risk.config import RiskSettings
from services.risk.history import service
from services.risk.history.schemas import PRESETS, ImportOptions, ImportOut
from services.risk.models import audit_log


def options_of(args: argparse.Namespace) -> ImportOptions:
    mapping: dict[str, str] = dict(PRESETS[args.preset]) if args.preset else {}
    for item in args.map or []:
        ours, sep, theirs = item.partition("=")
        if not sep:
            raise SystemExit(f"--map takes ours=theirs, not {item!r}")
        mapping[ours.strip()] = theirs.strip()
    return ImportOptions(
        mapping=mapping,
        amount_scale=args.amount_scale,
        currency=args.currency,
        kind=args.kind,
        label_delay_days=args.label_delay_days,
    )


def open_csv(path: Path) -> tuple[IO[bytes], io.TextIOWrapper, int]:
    """The raw file (its position drives the progress bar), the decoded text and the file's size."""
    raw: IO[bytes] = path.open("rb")
    stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if path.suffix == ".gz" else raw
    return raw, io.TextIOWrapper(stream, encoding="utf-8", newline=""), path.stat().st_size


async def import_history(
    path: Path, options: ImportOptions, settings: RiskSettings, *, quiet: bool = False
) -> ImportOut:
    database = create_database(settings, pool_size=1)
    raw, text, total = open_csv(path)
    try:
        with Progress(
            TextColumn("[bold]importing[/] {task.fields[rows]:,} rows"),
            BarColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            disable=quiet,
        ) as progress:
            task = progress.add_task("import", total=total, rows=0)
            done = 0

            def advance(rows: int) -> None:
                nonlocal done
                done += rows
                progress.update(task, completed=raw.tell(), rows=done)

            _, rows = service.rows_of(text, options)
            async with database.sessionmaker() as session:
                result = await service.import_batches(
                    session, rows, batch_size=settings.history_batch_size, commit_each=True, progress=advance
                )
                await audit_log.append(
                    session,
                    actor=os.environ.get("USER", "operator"),
                    actor_kind="operator",
                    action="history.imported",
                    target=path.name,
                    detail=result.model_dump(),
                )
                await session.commit()
        return result
    finally:
        text.close()
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.risk.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    history = commands.add_parser("import-history", help="import labelled transaction history from CSV (.csv[.gz])")
    history.add_argument("file", type=Path)
    history.add_argument("--preset", choices=sorted(PRESETS), help="a known export's column mapping")
    history.add_argument("--map", action="append", metavar="OURS=THEIRS", help="read our column from theirs")
    history.add_argument("--amount-scale", type=int, default=100, help="minor units per major unit of `amount`")
    history.add_argument("--currency", default="CNY")
    history.add_argument("--kind", default="card_payment")
    history.add_argument("--label-delay-days", type=float, default=7.0)
    history.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    settings = RiskSettings()
    try:
        result = asyncio.run(import_history(args.file, options_of(args), settings, quiet=args.quiet))
    except (DBAPIError, PostgresError, ConnectionError) as exc:
        # Not a traceback of the whole batch: which database, and what it said.
        database = make_url(settings.database_url.get_secret_value()).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        print(f"import-history: risk's database {database} failed: {reason}", file=sys.stderr)
        print(
            "  is RISK_DATABASE_URL set to the suite's risk database, migrated? (make run: .data/suite.env)",
            file=sys.stderr,
        )
        return 1
    json.dump(result.model_dump(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
