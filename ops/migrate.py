"""Apply every service's migrations: ``python -m ops.migrate`` (the Kubernetes migration job).

Reads the admin connection from ``DATABASE_URL`` (libpq style, ``sslmode=`` accepted; a
user and password left out of it come from ``PGUSER``/``PGPASSWORD``). Outside
development and test (``SUITE_ENVIRONMENT``) a service role that is missing or cannot be
granted fails the run (exit 1). ``--managed-roles``: the roles exist already
(CloudNativePG managed roles); the job only grants.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from kit.settings import Environment
from ops.database import SERVICES, RoleSetupError, asyncpg_url, prepare


async def wait_for_database(url: str, seconds: float, *, every: float = 2.0) -> bool:
    """True once ``SELECT 1`` succeeds; tried until ``seconds`` have passed (at least once)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return True
            except (DBAPIError, OSError) as exc:
                if loop.time() + every > deadline:
                    print(f"database not reachable: {exc}", file=sys.stderr)
                    return False
                await asyncio.sleep(every)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-roles", action="store_true", help="do not create per-service roles")
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=0.0,
        help="wait up to this long for the database to accept connections (a first install creates it meanwhile)",
    )
    parser.add_argument(
        "--managed-roles", action="store_true", help="the roles exist (CloudNativePG managed roles): only grant"
    )
    parser.add_argument("services", nargs="*", default=list(SERVICES), choices=list(SERVICES))
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    try:
        environment = Environment(os.environ.get("SUITE_ENVIRONMENT", "development"))
    except ValueError:
        print(f"SUITE_ENVIRONMENT must be one of {', '.join(Environment)}", file=sys.stderr)
        return 2
    if not asyncio.run(wait_for_database(asyncpg_url(url), args.wait_seconds)):
        print(f"the database did not accept connections within {args.wait_seconds:g} s", file=sys.stderr)
        return 1
    try:
        prepared = asyncio.run(
            prepare(
                asyncpg_url(url),
                roles=not args.no_roles,
                services=tuple(args.services),
                managed_roles=args.managed_roles,
                strict=not environment.allows_dev_secrets,
            )
        )
    except RoleSetupError as exc:
        print(f"migration stopped: {exc}", file=sys.stderr)
        return 1
    for service, service_url in prepared.service_urls.items():
        print(f"{service}: migrated; connects as {make_url(service_url).username or 'the admin role'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
