"""OAuth2 clients (client-credentials grant, RFC 6749 section 4.4).

Two kinds: the suite's own services (client id = service name, registered at start-up in development
with the scopes of ``SERVICE_CLIENT_SCOPES``) and API clients of systems outside the suite (the bank's
core system), registered by an operator (CLI) or a staff member (``system:maintain`` at aal2). A client
holds only the scopes it was given; a secret is generated here, shown once, and stored as an argon2id
hash; rotation replaces it, deactivation ends it (its tokens live out their short lifetime).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import BadRequest, Conflict, NotFound
from services.identity.config import SCOPES, SERVICE_CLIENT_SCOPES
from services.identity.errors import InvalidClient, InvalidScope
from services.identity.models import ServiceClient, audit_log
from services.identity.runtime import Runtime

CLIENT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{2,63}$")


class ClientNotFound(NotFound):
    code = "client_not_found"
    title = "No such API client"


class ClientExists(Conflict):
    code = "client_exists"
    title = "A client with this id exists"


class ReservedClientId(BadRequest):
    code = "reserved_client_id"
    title = "This client id belongs to one of the suite's services"


def check_scopes(scopes: list[str]) -> list[str]:
    """The scopes, deduplicated and sorted; an unknown one is refused (a typo must not pass silently)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidScope(f"unknown scopes: {', '.join(unknown)}")
    return sorted(set(scopes))


def new_secret() -> str:
    """A client secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


async def register_client(
    session: AsyncSession,
    runtime: Runtime,
    client_id: str,
    secret: str,
    scopes: list[str],
    *,
    replace: bool = True,
    actor: str = "system",
    actor_kind: str = "system",
) -> bool:
    """Create (or, with ``replace``, re-key) a service client; True when a row was written."""
    hashed = await runtime.passwords.hash(secret)
    now = datetime.now(UTC)
    statement = pg_insert(ServiceClient).values(
        client_id=client_id, secret_hash=hashed, scopes=scopes, active=True, kind="service", created_by=actor
    )
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=[ServiceClient.client_id],
            set_={
                "secret_hash": hashed,
                "scopes": scopes,
                "active": True,
                "secret_rotated_at": now,
                "deactivated_at": None,
            },
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[ServiceClient.client_id])
    written = (await session.execute(statement.returning(ServiceClient.client_id))).first() is not None
    if written:
        await audit_log.append(
            session,
            actor=actor,
            actor_kind=actor_kind,
            action="service_client.registered",
            target=client_id,
            detail={"scopes": scopes},
        )
    return written


async def register_dev_clients(session: AsyncSession, runtime: Runtime) -> int:
    """The suite's clients with the development secret and their scopes (development and test only).

    A client that exists keeps its secret, but its scopes are set to the table's: a development database
    made before scopes existed gets them, and a client never keeps a scope the table took away.
    """
    secret = runtime.settings.dev_service_client_secret.get_secret_value()
    count = 0
    for client_id, wanted in SERVICE_CLIENT_SCOPES.items():
        scopes = sorted(wanted)
        existing = await session.get(ServiceClient, client_id, with_for_update=True)
        if existing is None:
            if await register_client(session, runtime, client_id, secret, scopes, replace=False):
                count += 1
        elif sorted(existing.scopes) != scopes:
            await audit_log.append(
                session,
                actor="system",
                actor_kind="system",
                action="service_client.scopes_changed",
                target=client_id,
                detail={"from": list(existing.scopes), "to": scopes},
            )
            existing.scopes = scopes
    return count


async def create_api_client(
    session: AsyncSession,
    runtime: Runtime,
    client_id: str,
    scopes: list[str],
    *,
    description: str | None,
    actor: str,
    actor_kind: str,
) -> tuple[ServiceClient, str]:
    """A new API client for a system outside the suite; returns it and its secret (shown once)."""
    if not CLIENT_ID_PATTERN.fullmatch(client_id):
        raise BadRequest("a client id is 3-64 lower-case letters, digits and dashes, starting with a letter")
    if client_id in SERVICE_CLIENT_SCOPES:
        raise ReservedClientId()
    granted = check_scopes(scopes)
    if await session.get(ServiceClient, client_id) is not None:
        raise ClientExists()
    secret = new_secret()
    client = ServiceClient(
        client_id=client_id,
        secret_hash=await runtime.passwords.hash(secret),
        scopes=granted,
        active=True,
        kind="api",
        description=description,
        created_by=actor,
    )
    session.add(client)
    await session.flush()
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="api_client.created",
        target=client_id,
        detail={"scopes": granted},
    )
    return client, secret


async def _api_client(session: AsyncSession, client_id: str) -> ServiceClient:
    client = await session.get(ServiceClient, client_id, with_for_update=True)
    if client is None or client.kind != "api":
        raise ClientNotFound()
    return client


async def list_api_clients(session: AsyncSession) -> list[ServiceClient]:
    query = select(ServiceClient).where(ServiceClient.kind == "api").order_by(ServiceClient.client_id)
    return list((await session.scalars(query)).all())


async def rotate_api_client(
    session: AsyncSession,
    runtime: Runtime,
    client_id: str,
    *,
    actor: str,
    actor_kind: str,
    scopes: list[str] | None = None,
) -> tuple[ServiceClient, str]:
    """A new secret for an API client (the old one stops working at once); optionally new scopes.
    A deactivated client is reactivated by a rotation (its old secret stays dead)."""
    client = await _api_client(session, client_id)
    secret = new_secret()
    client.secret_hash = await runtime.passwords.hash(secret)
    client.secret_rotated_at = datetime.now(UTC)
    client.active, client.deactivated_at = True, None
    if scopes is not None:
        client.scopes = check_scopes(scopes)
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="api_client.secret_rotated",
        target=client_id,
        detail={"scopes": list(client.scopes)},
    )
    return client, secret


async def deactivate_api_client(
    session: AsyncSession, client_id: str, *, actor: str, actor_kind: str, reason: str
) -> ServiceClient:
    """The client can no longer obtain tokens (tokens already issued expire within their lifetime)."""
    client = await _api_client(session, client_id)
    if client.active:
        client.active, client.deactivated_at = False, datetime.now(UTC)
        await audit_log.append(
            session,
            actor=actor,
            actor_kind=actor_kind,
            action="api_client.deactivated",
            target=client_id,
            detail={"reason": reason},
        )
    return client


async def authenticate_client(
    session: AsyncSession, runtime: Runtime, client_id: str, secret: str, requested: str | None
) -> tuple[ServiceClient, str]:
    """The client and the granted scope string; one uniform failure for unknown client or wrong secret."""
    client = await session.get(ServiceClient, client_id)
    stored = client.secret_hash if client is not None and client.active else None
    if not await runtime.passwords.verify(stored, secret) or client is None:
        raise InvalidClient()
    allowed = set(client.scopes)
    if requested:
        wanted = requested.split()
        if not set(wanted) <= allowed:
            raise InvalidScope("a requested scope is not granted to this client")
        return client, " ".join(wanted)
    return client, " ".join(sorted(allowed))
