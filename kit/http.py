"""The service-to-service HTTP client.

Every call goes to the gateway (the one address a service knows), carries the
W3C trace context and the current request id, has a timeout, and is retried
only when repeating it cannot apply it twice: idempotent methods, calls that
carry an ``Idempotency-Key`` (the receiver deduplicates), and connection
failures where nothing reached the server.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from opentelemetry import propagate

from kit.context import REQUEST_ID_HEADER, current_request_id
from kit.errors import ServiceUnavailable

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"

TokenProvider = Callable[[], Awaitable[str | None]]


class UpstreamUnavailable(ServiceUnavailable):
    code = "upstream_unavailable"
    title = "A service this request depends on is unavailable"


class ServiceClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff_seconds: float = 0.1,
        token_provider: TokenProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )
        self._retries = retries
        self._backoff = backoff_seconds
        self._token_provider = token_provider

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        retries: int | None = None,
        anonymous: bool = False,
    ) -> httpx.Response:
        """Send a request; ``anonymous`` skips the service token (public routes such as the JWKS)."""
        method = method.upper()
        outgoing = await self._headers(headers, idempotency_key, anonymous=anonymous)
        may_repeat = method in IDEMPOTENT_METHODS or idempotency_key is not None
        budget = self._retries if retries is None else retries
        attempt = 0
        while True:
            try:
                response = await self._client.request(method, path, json=json, params=params, headers=outgoing)
            except httpx.ConnectError as exc:
                # Nothing reached the server: safe to try again for any method.
                if attempt >= budget:
                    raise UpstreamUnavailable(f"could not reach {path}") from exc
            except httpx.TransportError as exc:
                if not may_repeat or attempt >= budget:
                    raise UpstreamUnavailable(f"call to {path} failed") from exc
            else:
                if response.status_code not in RETRYABLE_STATUSES or not may_repeat or attempt >= budget:
                    return response
                await response.aclose()
            attempt += 1
            await asyncio.sleep(self._backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))  # noqa: S311 (jitter, not crypto)

    async def _headers(
        self, extra: Mapping[str, str] | None, idempotency_key: str | None, *, anonymous: bool
    ) -> dict[str, str]:
        outgoing: dict[str, str] = dict(extra or {})
        propagate.inject(outgoing)
        request_id = current_request_id()
        if request_id and REQUEST_ID_HEADER not in {k.lower() for k in outgoing}:
            outgoing[REQUEST_ID_HEADER] = request_id
        if idempotency_key is not None:
            outgoing[IDEMPOTENCY_KEY_HEADER] = idempotency_key
        if not anonymous and self._token_provider is not None and "authorization" not in {k.lower() for k in outgoing}:
            token = await self._token_provider()
            if token:
                outgoing["Authorization"] = f"Bearer {token}"
        return outgoing
