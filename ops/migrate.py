"""Apply every service's migrations: ``python -m ops.migrate`` (the Kubernetes migration job).

Reads the admin connection from ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from ops.database import SERVICES, asyncpg_url, prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-roles", action="store_true", help="do not create per-service roles")
    parser.add_argument("services", nargs="*", default=list(SERVICES), choices=list(SERVICES))
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    prepared = asyncio.run(prepare(asyncpg_url(url), roles=not args.no_roles, services=tuple(args.services)))
    for service, service_url in prepared.service_urls.items():
        print(f"{service}: migrated; connects as {service_url.split('@')[0].rsplit('/', 1)[-1] or 'admin'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
