"""Operator commands: ``python -m services.permissions.cli bootstrap-admin <subject>``.

The first administrator cannot be approved by a second person who does not
exist yet, so this command grants the ``admin`` role to one subject, and only
while no admin grant is in force. It takes an advisory lock (two operators
running it at once still get one admin), writes the grant with
``approved_by = "bootstrap"`` and appends the step to the audit chain. Every
later grant goes through requests and approvals.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import create_database
from services.permissions.checks.store import ChangeKind, record_change
from services.permissions.config import PermissionsSettings
from services.permissions.models import Grant, Role, audit_log

BOOTSTRAP_ACTOR = "bootstrap"
ADMIN_ROLE = "admin"


class BootstrapRefused(Exception):
    """An admin exists already (or the subject is not a staff id)."""


async def bootstrap_admin(session: AsyncSession, subject: str) -> Grant:
    """Grant ``admin`` to ``subject`` in the caller's transaction, if no admin grant is in force."""
    try:
        subject = str(uuid.UUID(subject))
    except ValueError as exc:
        raise BootstrapRefused("the subject must be a staff id (UUID)") from exc
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('permissions:bootstrap-admin'))"))
    admin = (await session.execute(select(Role).where(Role.name == ADMIN_ROLE))).scalar_one()
    now = datetime.now(UTC)
    existing = (
        await session.execute(
            select(Grant.id)
            .where(
                Grant.role_id == admin.id,
                Grant.revoked_at.is_(None),
                (Grant.expires_at.is_(None)) | (Grant.expires_at > now),
            )
            .limit(1)
        )
    ).first()
    if existing is not None:
        raise BootstrapRefused("an admin grant is already in force; grant further roles through approvals")
    grant = Grant(
        id=uuid.uuid4(),
        subject=subject,
        role_id=admin.id,
        scope=None,
        requested_by=BOOTSTRAP_ACTOR,
        approved_by=BOOTSTRAP_ACTOR,
    )
    session.add(grant)
    await session.flush()
    await record_change(session, ChangeKind.subject, subject)
    await audit_log.append(
        session,
        actor=BOOTSTRAP_ACTOR,
        actor_kind="system",
        action="grant.bootstrap_admin",
        target=subject,
        detail={"grant_id": str(grant.id), "role": ADMIN_ROLE},
    )
    return grant


async def _run_bootstrap(settings: PermissionsSettings, subject: str) -> int:
    database = create_database(settings, pool_size=1)
    try:
        async with database.sessionmaker() as session:
            try:
                grant = await bootstrap_admin(session, subject)
            except BootstrapRefused as exc:
                await session.rollback()
                print(f"refused: {exc}", file=sys.stderr)
                return 1
            await session.commit()
    finally:
        await database.dispose()
    print(f"granted {ADMIN_ROLE} to {grant.subject} (grant {grant.id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.permissions.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    boot = commands.add_parser("bootstrap-admin", help="grant admin to the first administrator (once)")
    boot.add_argument("subject", help="the staff id (UUID, the `sub` of identity's tokens)")
    args = parser.parse_args(argv)
    # bootstrap-admin is the only command so far (the parser refuses any other).
    return asyncio.run(_run_bootstrap(PermissionsSettings(), args.subject))


if __name__ == "__main__":
    raise SystemExit(main())
