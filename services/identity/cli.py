"""Operator commands: ``python -m services.identity.cli <command>``.

- ``create-admin [--username admin] [--email ...]``: the first staff admin, with a one-time password
  printed once (it must be changed at the first login). Does nothing if the user exists.
- ``register-client <client_id> [--scope ...]``: a service client; the secret is read from the
  environment variable named by ``--secret-env`` (never from the command line).
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

from kit.db import create_database
from kit.http import ServiceClient
from services.identity.accounts.service import create_staff
from services.identity.config import IdentitySettings
from services.identity.login.retention import login_log_archive, purge_login_log
from services.identity.models import Account, audit_log
from services.identity.runtime import Runtime
from services.identity.tokens.clients import register_client
from services.identity.tokens.keys import rotate


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
    commands.add_parser("rotate-keys", help="start signing with a new key (old keys stay published for the overlap)")
    commands.add_parser("purge-login-log", help="delete login-log entries older than the retention")
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args, IdentitySettings()))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
