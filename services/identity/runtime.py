"""What the identity endpoints share at run time, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.http import ServiceClient
from services.identity.config import IdentitySettings
from services.identity.crypto import Keyring
from services.identity.login.geo import GeoLookup, OfflineGeoLookup
from services.identity.passwords.hashing import Passwords
from services.identity.tokens.keys import KeyStore
from services.identity.vault import VaultClient


@dataclass
class Runtime:
    settings: IdentitySettings
    keyring: Keyring
    passwords: Passwords
    keys: KeyStore
    geo: GeoLookup
    client: ServiceClient
    #: Customers' personal data (through the gateway, with identity's service token).
    vault: VaultClient
    #: Sessions of their own, for writes that must outlive the request's transaction.
    sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def build(
        cls, settings: IdentitySettings, sessionmaker: async_sessionmaker[AsyncSession], client: ServiceClient
    ) -> Runtime:
        keyring = Keyring(settings.data_encryption_key.get_secret_value())
        return cls(
            settings=settings,
            keyring=keyring,
            passwords=Passwords(settings),
            keys=KeyStore(sessionmaker, keyring.signing, settings.key_cache_seconds),
            geo=OfflineGeoLookup(),
            client=client,
            vault=VaultClient(client),
            sessionmaker=sessionmaker,
        )


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool (a thread hop per request)."""
    runtime: Runtime = request.app.state.identity
    return runtime


Rt = Annotated[Runtime, Depends(get_runtime)]
