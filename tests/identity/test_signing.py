"""Access tokens are signed without PyJWT's per-call work, into exactly the tokens PyJWT would produce."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from services.identity.tokens.keys import ALGORITHM, CompactSigner

KEY = Ed25519PrivateKey.generate()
KID = "0123456789abcdef"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
claims_sets = st.dictionaries(st.text(max_size=10), json_values, max_size=8).map(
    # PyJWT insists on these types for the registered claims it checks.
    lambda claims: {key: value for key, value in claims.items() if key not in ("iss", "aud", "exp", "iat", "nbf")}
)


@given(claims_sets)
def test_the_token_is_the_one_pyjwt_makes(claims: dict[str, Any]) -> None:
    expected = jwt.encode(claims, KEY, algorithm=ALGORITHM, headers={"kid": KID, "typ": "at+jwt"})
    assert CompactSigner(KID, KEY).sign(claims) == expected


def test_the_token_verifies_with_pyjwt_and_says_which_key() -> None:
    claims = {"sub": "a1", "kind": "customer", "amr": ["pwd"], "acr": "aal1", "iat": 1, "exp": 2**40, "aud": "suite"}
    token = CompactSigner(KID, KEY).sign(claims)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": KID, "typ": "at+jwt"}
    assert jwt.decode(token, KEY.public_key(), algorithms=["EdDSA"], audience="suite") == claims


def test_another_key_does_not_verify_it() -> None:
    token = CompactSigner(KID, KEY).sign({"sub": "a1"})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, Ed25519PrivateKey.generate().public_key(), algorithms=["EdDSA"])
