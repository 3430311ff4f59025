"""Operator commands of the incidents service: ``python -m services.incidents.cli <command>``.

- ``verify-audit``: ask every service (through the gateway, with this
  service's client credentials and scope ``audit:verify``) to verify its audit
  chain and checkpoints; print the first bad entry per service as JSON; exit 1
  when any chain is broken or any service could not be verified.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx

from kit.db import create_database
from kit.http import ServiceClient
from kit.service_auth import ClientCredentialsProvider
from services.incidents.config import IncidentsSettings
from services.incidents.governance.integrity.service import run_verification

CLI_ACTOR = "cli"


async def verify_audit(settings: IncidentsSettings) -> int:
    token_http = httpx.AsyncClient(base_url=settings.gateway_url, timeout=settings.http_timeout_seconds)
    client = ServiceClient(
        settings.gateway_url,
        timeout=settings.http_timeout_seconds,
        retries=settings.http_retries,
        token_provider=ClientCredentialsProvider(
            token_http, settings.client_id, settings.client_secret.get_secret_value()
        ),
    )
    database = create_database(settings, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            result = await run_verification(
                session, client, settings.audit_verify_services, actor=CLI_ACTOR, actor_kind="system"
            )
            await session.commit()
    finally:
        await client.aclose()
        await token_http.aclose()
        await database.dispose()
    print(result.model_dump_json(indent=2))
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.incidents.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify-audit", help="verify every service's audit chain through the gateway")
    args = parser.parse_args(argv)
    settings = IncidentsSettings()
    if args.command == "verify-audit":
        return asyncio.run(verify_audit(settings))
    print(f"unknown command {args.command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
