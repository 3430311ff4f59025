"""identity and the real vault wired together in process, the way the gateway connects them in production.

identity calls the vault at ``/v1/vault/internal/...`` with its client-credentials token; the vault
verifies that token against identity's JWKS at ``/v1/identity/.well-known/jwks.json``. Here a small
ASGI router stands in for the gateway's forwarding (it strips ``/v1/<service>`` like the gateway does;
the gateway's own checks have their own tests), so both apps run in process with their real code,
their real databases and real tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from kit.auth import TokenVerifier
from kit.http import ServiceClient
from kit.service_auth import ClientCredentialsProvider
from services.identity.runtime import Runtime
from services.identity.vault import VaultClient
from tests.identity.support import DEV_SECRET

GATEWAY = "http://gateway.test"


class ForwardByPrefix:
    """``/v1/<name>/rest`` → ``/rest`` on app ``name``; anything else 404."""

    def __init__(self, apps: Mapping[str, FastAPI]) -> None:
        self.apps = dict(apps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        for name, app in self.apps.items():
            prefix = f"/v1/{name}"
            if path.startswith(prefix + "/"):
                inner = dict(scope, path=path[len(prefix) :], raw_path=path[len(prefix) :].encode())
                await app(inner, receive, send)
                return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@dataclass
class Wiring:
    """The clients made for one identity + vault pair (closed by :func:`wire`)."""

    router: ForwardByPrefix
    clients: list[ServiceClient] = field(default_factory=list)
    #: identity's own client (its token, through the stand-in gateway): what identity calls the vault with.
    identity_client: ServiceClient = field(init=False)
    token_http: list[httpx.AsyncClient] = field(default_factory=list)

    def service_client(self, client_id: str, base_url: str = GATEWAY, **kwargs: Any) -> ServiceClient:
        """A ``ServiceClient`` of ``client_id`` (token from identity); ``base_url`` elsewhere = unreachable."""
        token_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.router), base_url=GATEWAY)
        self.token_http.append(token_http)
        transport = httpx.ASGITransport(app=self.router) if base_url == GATEWAY else None
        client = ServiceClient(
            base_url,
            transport=transport,
            token_provider=ClientCredentialsProvider(token_http, client_id, DEV_SECRET),
            **kwargs,
        )
        self.clients.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        for http in self.token_http:
            await http.aclose()


async def wire(identity_app: FastAPI, vault_app: FastAPI) -> AsyncIterator[Wiring]:
    """Point identity's vault client and outbox at the vault, and the vault's token checks at identity."""
    wiring = Wiring(ForwardByPrefix({"identity": identity_app, "vault": vault_app}))
    wiring.identity_client = wiring.service_client("identity")
    runtime: Runtime = identity_app.state.identity
    runtime.vault = VaultClient(wiring.identity_client)
    identity_app.state.outbox_worker.client = wiring.identity_client
    vault_client = wiring.service_client("vault")
    verifier = TokenVerifier.from_settings(vault_app.state.settings, vault_client)
    vault_app.state.token_verifier = verifier
    try:
        yield wiring
    finally:
        await wiring.aclose()
