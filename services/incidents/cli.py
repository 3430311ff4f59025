"""Operator commands of the incidents service: ``python -m services.incidents.cli <command>``.

- ``verify-audit``: ask every service (through the gateway, with this
  service's client credentials and scope ``audit:verify``) to verify its audit
  chain and checkpoints; print the first bad entry per service as JSON; exit 1
  when any chain is broken or any service could not be verified.
- ``sample --audit ID --check CHECK --from T --to T``: run a sampling audit
  (``large_transfers``, ``unmasked_reads``, ``high_risk_grants``) over a period;
  its exceptions become findings of the audit (a scheduler runs it monthly).
- ``purge``: archive, then purge incidents' governance records past their retention.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import httpx

from kit.db import create_database
from kit.http import ServiceClient
from kit.service_auth import ClientCredentialsProvider
from services.incidents.config import IncidentsSettings
from services.incidents.governance.integrity.service import run_verification
from services.incidents.governance.retention.service import purge_all
from services.incidents.governance.sampling.schemas import Check, SamplingRequest
from services.incidents.governance.sampling.service import run_sampling

CLI_ACTOR = "cli"


@asynccontextmanager
async def gateway_client(settings: IncidentsSettings) -> AsyncIterator[ServiceClient]:
    """A client of the gateway with this service's client credentials (as the app's own)."""
    token_http = httpx.AsyncClient(base_url=settings.gateway_url, timeout=settings.http_timeout_seconds)
    client = ServiceClient(
        settings.gateway_url,
        timeout=settings.http_timeout_seconds,
        retries=settings.http_retries,
        token_provider=ClientCredentialsProvider(
            token_http, settings.client_id, settings.client_secret.get_secret_value()
        ),
    )
    try:
        yield client
    finally:
        await client.aclose()
        await token_http.aclose()


async def verify_audit(settings: IncidentsSettings) -> int:
    database = create_database(settings, pool_size=1)
    try:
        async with gateway_client(settings) as client, database.sessionmaker() as session:
            result = await run_verification(
                session, client, settings.audit_verify_services, actor=CLI_ACTOR, actor_kind="system"
            )
            await session.commit()
    finally:
        await database.dispose()
    print(result.model_dump_json(indent=2))
    return 0 if result.ok else 1


async def sample(settings: IncidentsSettings, audit_id: uuid.UUID, request: SamplingRequest) -> int:
    database = create_database(settings, pool_size=1)
    try:
        async with gateway_client(settings) as client, database.sessionmaker() as session:
            run = await run_sampling(session, client, settings, audit_id, request, actor=CLI_ACTOR, actor_kind="system")
            await session.commit()
    finally:
        await database.dispose()
    print(run.model_dump_json(indent=2))
    return 0


async def purge(settings: IncidentsSettings) -> int:
    database = create_database(settings, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            runs = await purge_all(session, settings, actor=CLI_ACTOR)
            await session.commit()
    finally:
        await database.dispose()
    print(json.dumps([run.model_dump(mode="json") for run in runs], indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.incidents.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify-audit", help="verify every service's audit chain through the gateway")
    sampling = commands.add_parser("sample", help="run a sampling audit over a period")
    sampling.add_argument("--audit", required=True, type=uuid.UUID, help="the audit the findings belong to")
    sampling.add_argument("--check", required=True, choices=[c.value for c in Check])
    sampling.add_argument("--from", dest="period_from", required=True, type=datetime.fromisoformat)
    sampling.add_argument("--to", dest="period_to", required=True, type=datetime.fromisoformat)
    commands.add_parser("purge", help="archive, then purge governance records past their retention")
    args = parser.parse_args(argv)
    settings = IncidentsSettings()
    if args.command == "verify-audit":
        return asyncio.run(verify_audit(settings))
    if args.command == "sample":
        request = SamplingRequest(check=args.check, period_from=args.period_from, period_to=args.period_to)
        return asyncio.run(sample(settings, args.audit, request))
    return asyncio.run(purge(settings))


if __name__ == "__main__":
    raise SystemExit(main())
