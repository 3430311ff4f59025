"""The verified-token cache never accepts what the verifier would refuse."""

from __future__ import annotations

import time

import pytest

from kit.auth import InvalidToken, RevokedSession
from services.permissions.token_cache import CachingVerifier
from tests.support.tokens import TestIssuer


async def test_cache_hit_returns_the_same_principal_and_rechecks_revocation() -> None:
    issuer = TestIssuer()
    revoked: set[str] = set()
    inner = issuer.verifier()
    inner.is_revoked = revoked.__contains__
    verifier = CachingVerifier(inner)
    token = issuer.mint(subject="vault", kind="service", session_id="s-1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first
    revoked.add("s-1")
    with pytest.raises(RevokedSession):
        await verifier.verify(token)


async def test_forged_and_expired_tokens_are_never_cached() -> None:
    issuer, stranger = TestIssuer(), TestIssuer()
    verifier = CachingVerifier(issuer.verifier(), max_age_seconds=60)
    forged = stranger.mint(kind="service")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(forged)
    expired = issuer.mint(kind="service", extra={"exp": int(time.time()) - 120, "iat": int(time.time()) - 300})
    with pytest.raises(InvalidToken):
        await verifier.verify(expired)


async def test_entries_age_out_and_the_cache_is_bounded() -> None:
    issuer = TestIssuer()
    verifier = CachingVerifier(issuer.verifier(), max_entries=3, max_age_seconds=0)
    token = issuer.mint(kind="service")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is not first  # max_age 0: verified again
    for _ in range(5):
        await verifier.verify(issuer.mint(kind="service"))
    assert len(verifier._cache) <= 3
    assert verifier.issuer == "bank-suite-identity"
