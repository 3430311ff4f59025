"""OAuth2 service clients (client-credentials grant, RFC 6749 section 4.4)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.config import SERVICE_CLIENTS
from services.identity.errors import InvalidClient, InvalidScope
from services.identity.models import ServiceClient, audit_log
from services.identity.runtime import Runtime


async def register_client(
    session: AsyncSession, runtime: Runtime, client_id: str, secret: str, scopes: list[str], *, replace: bool = True
) -> bool:
    """Create (or, with ``replace``, re-key) a client; True when a row was written."""
    hashed = await runtime.passwords.hash(secret)
    statement = pg_insert(ServiceClient).values(client_id=client_id, secret_hash=hashed, scopes=scopes, active=True)
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=[ServiceClient.client_id], set_={"secret_hash": hashed, "scopes": scopes, "active": True}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[ServiceClient.client_id])
    written = (await session.execute(statement.returning(ServiceClient.client_id))).first() is not None
    if written:
        await audit_log.append(
            session,
            actor="system",
            actor_kind="system",
            action="service_client.registered",
            target=client_id,
            detail={"scopes": scopes},
        )
    return written


async def register_dev_clients(session: AsyncSession, runtime: Runtime) -> int:
    """The suite's clients with the development secret (development and test only; never overwrites)."""
    secret = runtime.settings.dev_service_client_secret.get_secret_value()
    count = 0
    for client_id in SERVICE_CLIENTS:
        exists = await session.scalar(select(ServiceClient.client_id).where(ServiceClient.client_id == client_id))
        if exists is None and await register_client(session, runtime, client_id, secret, [], replace=False):
            count += 1
    return count


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
