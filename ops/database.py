"""Database preparation for the whole suite: embedded server, schemas, roles, migrations.

Used by ``make run``, by the test suite and by the production migration job
(``python -m ops.migrate``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from kit.migrations import upgrade
from kit.settings import asyncpg_url as _asyncpg_url

logger = logging.getLogger("ops.database")

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identity", "permissions", "vault", "risk", "incidents")
#: Tables a service may append to but never change: its writer role gets no
#: UPDATE/DELETE/TRUNCATE on them.
APPEND_ONLY_TABLES = ("audit_entry", "audit_checkpoint")
#: Tables a service updates but never empties (the audit chain's head row).
KEPT_TABLES = ("audit_head",)


def migrations_dir(service: str) -> Path:
    return ROOT / "services" / service / "migrations"


def asyncpg_url(url: str) -> str:
    """Accept libpq-style URLs (``postgresql://...?sslmode=``) and return the asyncpg dialect URL."""
    return _asyncpg_url(url)


def embedded_server_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL whose data lives in ``data_dir``."""
    import pgserver

    # Its INFO lines (every pg_ctl call) are noise, and at interpreter exit
    # they would go to streams that may already be closed.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri = make_url(server.get_uri())
    return uri.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def role_name(service: str) -> str:
    return f"suite_{service}"


def with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def with_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


async def create_database(admin_url: str, name: str, *, template: str | None = None) -> None:
    engine = create_async_engine(with_database(admin_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            clause = f' TEMPLATE "{template}"' if template else ""
            await connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        await engine.dispose()


async def drop_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(with_database(admin_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class PreparedDatabase:
    admin_url: str
    #: The URL each service should connect with (its own role where possible).
    service_urls: dict[str, str]


async def migrate_all(admin_url: str, services: tuple[str, ...] = SERVICES) -> None:
    for service in services:
        await asyncio.to_thread(upgrade, migrations_dir(service), admin_url, service)


class RoleSetupError(RuntimeError):
    """A service role is missing or could not be granted (fatal outside development)."""


async def prepare(
    admin_url: str,
    *,
    roles: bool = True,
    services: tuple[str, ...] = SERVICES,
    managed_roles: bool = False,
    strict: bool = False,
    role_prefix: str = "suite_",
) -> PreparedDatabase:
    """Create schemas, apply every service's migrations, then set up per-service roles.

    ``managed_roles``: the roles exist already (CloudNativePG's managed roles, each with
    its password secret); they are only granted, never created, and a missing one is an
    error. ``strict`` (every environment but development and test): a role that cannot be
    created or granted stops the run instead of leaving the service on the admin role,
    where its append-only audit tables would be writable.
    """
    await migrate_all(admin_url, services)
    urls = dict.fromkeys(services, admin_url)
    if roles:
        for service in services:
            role = f"{role_prefix}{service}"
            try:
                await _grant_service_role(admin_url, service, role, create=not managed_roles)
            except (DBAPIError, RoleSetupError) as exc:
                if strict:
                    raise RoleSetupError(f"role {role} for {service}: {_reason(exc)}") from exc
                logger.warning("no dedicated role for %s (%s); using the admin connection", service, _reason(exc))
                continue
            if managed_roles or await _can_log_in(with_role(admin_url, role)):
                urls[service] = with_role(admin_url, role)
            elif strict:
                raise RoleSetupError(f"role {role} for {service} cannot log in")
    return PreparedDatabase(admin_url=admin_url, service_urls=urls)


def _reason(exc: Exception) -> str:
    return str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)


async def _grant_service_role(admin_url: str, service: str, role: str, *, create: bool) -> None:
    """Give ``role`` (created when ``create``) access to ``service``'s schema only."""
    database = make_url(admin_url).database or "postgres"
    append_only = ", ".join(f'"{service}".{table}' for table in APPEND_ONLY_TABLES)
    kept = ", ".join(f'"{service}".{table}' for table in KEPT_TABLES)
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            exists = (await connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})).first()
            if exists is None:
                if not create:
                    raise RoleSetupError("the role does not exist (declare it in the Cluster's managed roles)")
                try:
                    await connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
                except DBAPIError as exc:
                    if "already exists" not in str(exc):
                        raise
            for statement in (
                f'REVOKE ALL ON SCHEMA "{service}" FROM PUBLIC',
                f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
                f'GRANT USAGE ON SCHEMA "{service}" TO "{role}"',
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{service}" TO "{role}"',
                f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{service}" TO "{role}"',
                # Tables a later migration creates are usable by the role at once (the new release's
                # pods turn ready when the migration commits, before this Job's grants run).
                f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{service}" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES'
                f' TO "{role}"',
                f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{service}" GRANT USAGE, SELECT ON SEQUENCES TO "{role}"',
                f'REVOKE UPDATE, DELETE, TRUNCATE ON {append_only} FROM "{role}"',
                f'REVOKE DELETE, TRUNCATE ON {kept} FROM "{role}"',
            ):
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _can_log_in(url: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except (DBAPIError, OSError):
        return False
    finally:
        await engine.dispose()
