"""Operator commands: ``python -m services.identity.cli <command>``.

- ``create-admin [--username admin] [--email ...]``: the first staff admin, with a one-time password
  printed once (it must be changed at the first login). Does nothing if the user exists.
- ``register-client <client_id> [--scope ...]``: a service client; the secret is read from the
  environment variable named by ``--secret-env`` (never from the command line).
- ``create-api-client <client_id> --scope ... [--description ...] [--rotate-if-exists]``: an API client
  for a system outside the suite (the bank's core system); the generated secret is printed once and
  stored hashed. ``--rotate-if-exists`` re-keys an existing one instead of refusing (``make run``).
- ``rotate-client-secret <client_id> [--scope ...]``: a new secret (printed once) for an API client.
- ``deactivate-client <client_id> --reason ...``: the API client can no longer get tokens.
- ``list-api-clients``: the API clients, their scopes and state (never a secret).
- ``rotate-keys``: a new token signing key; the old ones stay published for the overlap.
- ``purge-login-log``: apply the login-log retention now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import create_database
from kit.errors import SuiteError
from kit.http import ServiceClient
from services.identity.accounts.service import create_staff
from services.identity.config import IdentitySettings
from services.identity.login.retention import login_log_archive, purge_login_log
from services.identity.models import Account, audit_log
from services.identity.runtime import Runtime
from services.identity.tokens.clients import (
    ClientExists,
    create_api_client,
    deactivate_api_client,
    list_api_clients,
    register_client,
    rotate_api_client,
)
from services.identity.tokens.keys import rotate

API_CLIENT_COMMANDS = ("create-api-client", "rotate-client-secret", "deactivate-client", "list-api-clients")


async def _api_client_command(session: AsyncSession, runtime: Runtime, args: argparse.Namespace) -> dict[str, object]:
    """The API-client commands (a secret appears in the output once; identity keeps only its hash)."""
    if args.command == "create-api-client":
        scopes = list(args.scope or [])
        created = True
        try:
            api_client, secret = await create_api_client(
                session,
                runtime,
                args.client_id,
                scopes,
                description=args.description,
                actor="cli",
                actor_kind="operator",
            )
        except ClientExists:
            if not args.rotate_if_exists:
                raise
            created = False
            api_client, secret = await rotate_api_client(
                session, runtime, args.client_id, actor="cli", actor_kind="operator", scopes=scopes
            )
        return {
            "client_id": api_client.client_id,
            "created": created,
            "scopes": list(api_client.scopes),
            "client_secret": secret,
        }
    if args.command == "rotate-client-secret":
        api_client, secret = await rotate_api_client(
            session, runtime, args.client_id, actor="cli", actor_kind="operator", scopes=args.scope
        )
        return {"client_id": api_client.client_id, "scopes": list(api_client.scopes), "client_secret": secret}
    if args.command == "deactivate-client":
        api_client = await deactivate_api_client(
            session, args.client_id, actor="cli", actor_kind="operator", reason=args.reason
        )
        return {"client_id": api_client.client_id, "active": api_client.active}
    return {
        "clients": [
            {"client_id": c.client_id, "scopes": list(c.scopes), "active": c.active}
            for c in await list_api_clients(session)
        ]
    }


async def _run(args: argparse.Namespace, settings: IdentitySettings) -> dict[str, object]:
    database = create_database(settings, pool_size=1)
    client = ServiceClient(settings.gateway_url)
    runtime = Runtime.build(settings, database.sessionmaker, client)
    keyring = runtime.keyring
    try:
        async with database.sessionmaker() as session:
            result: dict[str, object]
            if args.command == "create-admin":
                username = args.username.strip().lower()
                existing = await session.scalar(select(Account.id).where(Account.username == username))
                if existing is not None:
                    return {"created": False, "username": username, "id": str(existing)}
                account, password = await create_staff(
                    session, runtime, username=username, email=args.email, actor="cli"
                )
                result = {"created": True, "username": username, "id": str(account.id), "one_time_password": password}
            elif args.command == "register-client":
                secret = os.environ.get(args.secret_env, "")
                if len(secret) < 16:
                    raise SystemExit(f"set {args.secret_env} to the client's secret (16+ characters)")
                await register_client(session, runtime, args.client_id, secret, list(args.scope or []))
                result = {"registered": args.client_id, "scopes": list(args.scope or [])}
            elif args.command in API_CLIENT_COMMANDS:
                result = await _api_client_command(session, runtime, args)
            elif args.command == "rotate-keys":
                key = await rotate(session, keyring.signing, settings.signing_key_overlap_seconds)
                await audit_log.append(
                    session, actor="cli", actor_kind="operator", action="signing_key.rotated", target=key.kid, detail={}
                )
                result = {"new_kid": key.kid, "overlap_seconds": settings.signing_key_overlap_seconds}
            else:
                deleted = await purge_login_log(
                    session,
                    settings.login_log_retention_days,
                    archive_dir=login_log_archive(settings.login_log_archive_dir),
                )
                await audit_log.append(
                    session,
                    actor="cli",
                    actor_kind="operator",
                    action="login_log.purged",
                    target=None,
                    detail={"deleted": deleted},
                )
                result = {"deleted": deleted}
            await session.commit()
            return result
    finally:
        await client.aclose()
        await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("create-admin", help="create the first staff admin (one-time password printed once)")
    admin.add_argument("--username", default="admin")
    admin.add_argument("--email", default=None)
    client = commands.add_parser("register-client", help="register or re-key a service client")
    client.add_argument("client_id")
    client.add_argument("--secret-env", default="IDENTITY_NEW_CLIENT_SECRET")
    client.add_argument("--scope", action="append")
    api = commands.add_parser("create-api-client", help="an API client for a system outside the suite")
    api.add_argument("client_id")
    api.add_argument("--scope", action="append", required=True)
    api.add_argument("--description", default=None)
    api.add_argument("--rotate-if-exists", action="store_true", help="re-key an existing client instead of failing")
    rotate_client = commands.add_parser("rotate-client-secret", help="a new secret for an API client")
    rotate_client.add_argument("client_id")
    rotate_client.add_argument("--scope", action="append", default=None)
    deactivate = commands.add_parser("deactivate-client", help="stop an API client from getting tokens")
    deactivate.add_argument("client_id")
    deactivate.add_argument("--reason", required=True)
    commands.add_parser("list-api-clients", help="the API clients and their scopes")
    commands.add_parser("rotate-keys", help="start signing with a new key (old keys stay published for the overlap)")
    commands.add_parser("purge-login-log", help="delete login-log entries older than the retention")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_run(args, IdentitySettings()))
    except SuiteError as exc:
        sys.stderr.write(f"{exc.code}: {exc.detail or exc.title}\n")
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
