"""What the identity endpoints share at run time, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kit.http import ServiceClient
from services.identity.config import IdentitySettings
from services.identity.crypto import Keyring
from services.identity.login.geo import GeoLookup
from services.identity.passwords.hashing import Passwords
from services.identity.tokens.keys import KeyStore


@dataclass
class Runtime:
    settings: IdentitySettings
    keyring: Keyring
    passwords: Passwords
    keys: KeyStore
    geo: GeoLookup
    client: ServiceClient


async def get_runtime(request: Request) -> Runtime:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool (a thread hop per request)."""
    runtime: Runtime = request.app.state.identity
    return runtime


Rt = Annotated[Runtime, Depends(get_runtime)]
