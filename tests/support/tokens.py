"""A test token issuer for service-level tests (flow tests use identity's real tokens).

It signs tokens with a throw-away Ed25519 key and plugs a verifier that knows
that key into an app, so a service's own tests can act as a customer, a staff
member or a service without running identity.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from jwt.algorithms import OKPAlgorithm

from kit.auth import TokenVerifier

ISSUER = "bank-suite-identity"
AUDIENCE = "bank-suite"


class TestIssuer:
    __test__ = False  # not a test class, despite the name

    def __init__(self, kid: str | None = None) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = kid or uuid.uuid4().hex[:12]

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(kid=self.kid, alg="EdDSA", use="sig")
        return {"keys": [jwk]}

    def mint(
        self,
        subject: str | uuid.UUID | None = None,
        *,
        kind: str = "staff",
        session_id: str | None = None,
        acr: str = "aal2",
        amr: tuple[str, ...] = ("pwd", "otp"),
        scope: str = "",
        ttl: int = 600,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(subject or uuid.uuid4()),
            "kind": kind,
            "sid": session_id or str(uuid.uuid4()),
            "acr": acr,
            "amr": list(amr),
            "scope": scope,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ttl,
        }
        claims.update(extra or {})
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def verifier(self) -> TokenVerifier:
        jwks = self.jwks()

        async def fetch() -> Mapping[str, Any]:
            return jwks

        return TokenVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)

    def install(self, app: FastAPI) -> None:
        """Make a started app trust this issuer (call after its lifespan began)."""
        app.state.token_verifier = self.verifier()

    def headers(self, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(**kwargs)}"}
