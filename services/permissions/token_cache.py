"""A cache of verified access tokens in front of the kit's verifier, for the check API's rate.

Every service call to ``/internal/checks`` carries the caller's service token,
the same one for minutes; verifying its EdDSA signature and claims costs more
than the permission check itself. A token already verified is remembered by
its exact string (so nothing about it can differ) until the earliest of its
``exp`` and ``max_age_seconds`` after verification, which also bounds how long
a key withdrawn from the JWKS keeps working here. Session revocation, when the
inner verifier knows it, is still checked on every use.
"""

from __future__ import annotations

import time
from typing import Any

from kit.auth import Principal, RevokedSession, TokenVerifier


class CachingVerifier:
    def __init__(self, inner: TokenVerifier, *, max_entries: int = 10_000, max_age_seconds: float = 60.0) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.max_age = max_age_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def verify(self, token: str) -> Principal:
        now = time.time()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            principal = hit[1]
            is_revoked = self.inner.is_revoked
            if principal.session_id and is_revoked is not None and is_revoked(principal.session_id):
                raise RevokedSession("the session of this token was revoked")
            return principal
        principal = await self.inner.verify(token)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()  # crude but bounded: a flood of distinct tokens cannot grow memory
        self._cache[token] = (min(principal.expires_at.timestamp(), now + self.max_age), principal)
        return principal

    def __getattr__(self, name: str) -> Any:
        # Everything else (load_jwks, issuer, ...) is the inner verifier's.
        return getattr(self.inner, name)
