"""Service accounts: OAuth2 client-credentials tokens for service-to-service calls.

identity issues them at ``POST /v1/identity/public/oauth/token``
(``grant_type=client_credentials``, ``client_id``, ``client_secret``,
optional ``scope``; RFC 6749 section 4.4). The provider caches the token and
fetches a new one a little before it expires; concurrent callers share one
fetch.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from kit.errors import ServiceUnavailable

TOKEN_PATH = "/v1/identity/public/oauth/token"  # noqa: S105 (a path, not a secret)


class ServiceTokenUnavailable(ServiceUnavailable):
    code = "service_token_unavailable"
    title = "This service could not obtain its access token"


class ClientCredentialsProvider:
    def __init__(
        self,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        token_path: str = TOKEN_PATH,
        refresh_margin_seconds: float = 30.0,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._path = token_path
        self._margin = refresh_margin_seconds
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> str:
        if self._token is not None and time.monotonic() < self._expires_at - self._margin:
            return self._token
        async with self._lock:
            if self._token is not None and time.monotonic() < self._expires_at - self._margin:
                return self._token
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
            if self._scope:
                form["scope"] = self._scope
            try:
                response = await self._http.post(self._path, data=form)
            except httpx.HTTPError as exc:
                raise ServiceTokenUnavailable("identity is unreachable") from exc
            if response.status_code != 200:
                raise ServiceTokenUnavailable(f"identity refused the client credentials ({response.status_code})")
            body = response.json()
            self._token = str(body["access_token"])
            self._expires_at = time.monotonic() + float(body.get("expires_in", 300))
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after a 401), so the next call fetches a new one."""
        self._token = None
