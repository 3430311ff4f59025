"""Token verification from the attacker's side."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm

from kit.auth import InvalidToken, RevokedSession, SubjectKind, TokenVerifier, acr_at_least
from kit.clock import MovableClock
from tests.support.tokens import AUDIENCE, ISSUER, TestIssuer

SHARED = b"a-shared-hmac-secret-of-32-bytes!!"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


@pytest.fixture
def issuer() -> TestIssuer:
    return TestIssuer()


async def test_a_good_token_gives_its_principal(issuer: TestIssuer) -> None:
    token = issuer.mint("staff-1", kind="staff", acr="aal2", amr=("pwd", "otp"), scope="a b")
    principal = await issuer.verifier().verify(token)
    assert principal.subject == "staff-1"
    assert principal.kind is SubjectKind.staff
    assert principal.amr == ("pwd", "otp")
    assert principal.scopes == {"a", "b"}


async def test_expired_token_is_refused(issuer: TestIssuer) -> None:
    with pytest.raises(InvalidToken, match="expired"):
        await issuer.verifier().verify(issuer.mint(ttl=-120))


async def test_small_clock_skew_is_tolerated(issuer: TestIssuer) -> None:
    token = issuer.mint("customer-1", kind="customer", acr="aal1", amr=("pwd",), ttl=-5)
    principal = await issuer.verifier().verify(token)
    assert principal.subject == "customer-1"
    assert principal.kind is SubjectKind.customer
    assert principal.acr == "aal1"
    assert principal.amr == ("pwd",)


@pytest.mark.parametrize(("claim", "value"), [("aud", "another-api"), ("iss", "evil-issuer")])
async def test_wrong_audience_or_issuer_is_refused(issuer: TestIssuer, claim: str, value: str) -> None:
    with pytest.raises(InvalidToken):
        await issuer.verifier().verify(issuer.mint(extra={claim: value}))


async def test_a_token_signed_by_another_key_with_a_known_kid_is_refused(issuer: TestIssuer) -> None:
    forger = TestIssuer(kid=issuer.kid)
    with pytest.raises(InvalidToken):
        await issuer.verifier().verify(forger.mint())


async def test_alg_none_is_refused(issuer: TestIssuer) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "kind": "staff", "iat": now, "exp": now + 60}
    with pytest.raises(InvalidToken, match="algorithm"):
        await issuer.verifier().verify(unsigned(claims, {"alg": "none", "kid": issuer.kid}))


async def test_hmac_signed_with_the_public_key_is_refused(issuer: TestIssuer) -> None:
    """The classic key-confusion attack: HS256 keyed with the published public key."""
    public_raw = issuer.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "kind": "staff", "iat": now, "exp": now + 60}
    header = {"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    import hashlib
    import hmac

    signature = hmac.new(public_raw, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm"):
        await issuer.verifier().verify(f"{signing_input}.{b64(signature)}")


async def test_an_es256_header_on_an_ed25519_key_is_refused(issuer: TestIssuer) -> None:
    ec_key = generate_private_key(SECP256R1())
    token = jwt.encode({"sub": "x"}, ec_key, algorithm="ES256", headers={"kid": issuer.kid})
    with pytest.raises(InvalidToken, match="does not match"):
        await issuer.verifier().verify(token)


async def test_es256_keys_are_supported() -> None:
    ec_key = generate_private_key(SECP256R1())
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    jwk.update(kid="ec-1", alg="ES256")

    async def fetch() -> Mapping[str, Any]:
        return {"keys": [jwk]}

    now = int(time.time())
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "kind": "service", "iat": now, "exp": now + 60},
        ec_key,
        algorithm="ES256",
        headers={"kid": "ec-1"},
    )
    principal = await TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE).verify(token)
    assert principal.kind is SubjectKind.service


async def test_hmac_keys_in_the_jwks_are_ignored() -> None:
    async def fetch() -> Mapping[str, Any]:
        return {"keys": [{"kty": "oct", "k": b64(SHARED), "kid": "h", "alg": "HS256"}]}

    token = jwt.encode({"sub": "x"}, SHARED, algorithm="HS256", headers={"kid": "h"})
    with pytest.raises(InvalidToken):
        await TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE).verify(token)


async def test_garbage_and_missing_claims_are_refused(issuer: TestIssuer) -> None:
    verifier = issuer.verifier()
    for token in ("not-a-jwt", "a.b.c", ""):
        with pytest.raises(InvalidToken):
            await verifier.verify(token)
    now = int(time.time())
    no_kind = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60},
        issuer.key,
        algorithm="EdDSA",
        headers={"kid": issuer.kid},
    )
    with pytest.raises(InvalidToken, match="kind"):
        await verifier.verify(no_kind)


async def test_unknown_kid_refetches_once_for_concurrent_callers_and_backs_off() -> None:
    old, new = TestIssuer(), TestIssuer()
    served = old.jwks()
    fetches = 0

    async def fetch() -> Mapping[str, Any]:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.01)
        return served

    verifier = TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE, refetch_interval=60)
    await verifier.verify(old.mint())
    assert fetches == 1
    # identity rotates: the new key appears in the JWKS.
    served = {"keys": old.jwks()["keys"] + new.jwks()["keys"]}
    verifier._last_fetch = float("-inf")  # the previous fetch was long ago
    results = await asyncio.gather(*(verifier.verify(new.mint()) for _ in range(20)))
    assert len(results) == 20
    assert fetches == 2
    # A flood of made-up key ids does not turn into a flood of fetches.
    for _ in range(10):
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(TestIssuer().mint())
    assert fetches == 2


async def test_a_revoked_session_is_refused(issuer: TestIssuer) -> None:
    revoked = {"sid-gone"}
    jwks = issuer.jwks()

    async def fetch() -> Mapping[str, Any]:
        return jwks

    verifier = TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE, is_revoked=revoked.__contains__)
    await verifier.verify(issuer.mint(session_id="sid-live"))
    with pytest.raises(RevokedSession):
        await verifier.verify(issuer.mint(session_id="sid-gone"))


def test_assurance_levels_are_ordered() -> None:
    assert acr_at_least("aal3", "aal2")
    assert acr_at_least("aal2", "aal2")
    assert not acr_at_least("aal1", "aal2")
    assert not acr_at_least("made-up", "aal1")


async def test_a_remembered_token_still_has_its_revocation_checked(issuer: TestIssuer) -> None:
    revoked: set[str] = set()
    verifier = issuer.verifier()
    verifier.is_revoked = revoked.__contains__
    token = issuer.mint(session_id="s-1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # remembered: no second signature check
    revoked.add("s-1")
    with pytest.raises(RevokedSession):
        await verifier.verify(token)


async def test_a_remembered_token_stops_when_its_key_is_retired(issuer: TestIssuer) -> None:
    verifier = issuer.verifier()
    token = issuer.mint()
    await verifier.verify(token)
    verifier.load_jwks(TestIssuer().jwks())  # identity rotated and retired the old key
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_remembered_token_stops_at_its_expiry(issuer: TestIssuer) -> None:
    jwks = issuer.jwks()

    async def fetch() -> Mapping[str, Any]:
        return jwks

    verifier = TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0)
    verifier.clock = clock = MovableClock()
    token = issuer.mint("a-subject", ttl=60)
    await verifier.verify(token)
    clock.advance(55)
    assert (await verifier.verify(token)).subject == "a-subject"  # remembered, still in time
    clock.advance(6)
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)
    fresh = TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=0)
    fresh.clock = clock  # nothing remembered: the signed path reads the same clock
    with pytest.raises(InvalidToken, match="expired"):
        await fresh.verify(token)


async def test_refused_tokens_are_never_remembered_and_the_memory_is_bounded() -> None:
    issuer, stranger = TestIssuer(), TestIssuer()
    verifier = issuer.verifier()
    verifier.verified_cache_size = 3
    forged = stranger.mint()
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(forged)
    for _ in range(5):
        await verifier.verify(issuer.mint())
    assert len(verifier._verified) == 3
