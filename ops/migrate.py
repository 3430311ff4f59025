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

from kit.settings import Environment
from ops.database import SERVICES, RoleSetupError, asyncpg_url, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-roles", action="store_true", help="do not create per-service roles")
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
        print(f"{service}: migrated; connects as {service_url.split('@')[0].rsplit('/', 1)[-1] or 'admin'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
