"""Token signing keys: Ed25519, private halves encrypted at rest, rotated with overlap.

The newest key that has not been superseded signs; every key whose
``retires_at`` is still ahead stays in the JWKS, so tokens signed just before
a rotation keep verifying until they expire. Replicas reload the key set every
``key_cache_seconds``, which bounds how long a rotation takes to reach them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.identity.crypto import FieldCipher
from services.identity.models import SigningKey

ALGORITHM = "EdDSA"
_LOCK_KEY = "identity:signing-key"


def _context(kid: str) -> str:
    return f"signing_key:{kid}"


async def create_key(session: AsyncSession, cipher: FieldCipher) -> SigningKey:
    """Add a new signing key (it signs from now on) without touching older keys."""
    private = Ed25519PrivateKey.generate()
    kid = uuid.uuid4().hex[:16]
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update(kid=kid, alg=ALGORITHM, use="sig")
    key = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_enc=cipher.encrypt(raw, _context(kid)),
        public_jwk=jwk,
        created_at=datetime.now(UTC),
    )
    session.add(key)
    await session.flush()
    return key


async def rotate(session: AsyncSession, cipher: FieldCipher, overlap_seconds: int) -> SigningKey:
    """A new key signs; the previous ones stay published for ``overlap_seconds`` (then drop out)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK_KEY})
    now = datetime.now(UTC)
    await session.execute(
        update(SigningKey)
        .where(SigningKey.superseded_at.is_(None))
        .values(superseded_at=now, retires_at=now + timedelta(seconds=overlap_seconds))
    )
    return await create_key(session, cipher)


async def ensure_key(session: AsyncSession, cipher: FieldCipher) -> None:
    """Create the first key when there is none (replicas starting together create one)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": _LOCK_KEY})
    current = await session.scalar(select(SigningKey.kid).where(SigningKey.superseded_at.is_(None)).limit(1))
    if current is None:
        await create_key(session, cipher)


def _b64url(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


#: Built once: json.dumps with any option builds a new encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class CompactSigner:
    """A claims set as a compact JWS (RFC 7515 section 7.1) signed by one Ed25519 key.

    Byte for byte what ``jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"})``
    produces (Ed25519 signatures are deterministic; a property test holds the two together), without what
    PyJWT does again on every call (assembling and sorting the header, building JSON encoders, looking the
    algorithm up): measured, that cost as much as the signature itself, on every login and refresh.
    Tokens are verified by PyJWT (``kit.auth``), never by this class.
    """

    def __init__(self, kid: str, key: Ed25519PrivateKey) -> None:
        self.kid = kid
        self._key = key
        header = json.dumps({"alg": ALGORITHM, "kid": kid, "typ": "at+jwt"}, separators=(",", ":"), sort_keys=True)
        self._header = _b64url(header.encode()) + b"."

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = self._header + _b64url(_COMPACT_JSON.encode(claims).encode())
        return (signing_input + b"." + _b64url(self._key.sign(signing_input))).decode("ascii")


class KeyStore:
    """In-memory view of the signing keys, reloaded from the database periodically."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], cipher: FieldCipher, cache_seconds: float
    ) -> None:
        self._sessionmaker = sessionmaker
        self._cipher = cipher
        self._cache_seconds = cache_seconds
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self._signing: CompactSigner | None = None
        self._jwks: dict[str, Any] = {"keys": []}

    async def _refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self._cache_seconds and self._signing is not None:
            return
        async with self._lock:
            if not force and time.monotonic() - self._loaded_at < self._cache_seconds and self._signing is not None:
                return
            now = datetime.now(UTC)
            async with self._sessionmaker() as session:
                rows = (
                    await session.scalars(
                        select(SigningKey)
                        .where(or_(SigningKey.retires_at.is_(None), SigningKey.retires_at > now))
                        .order_by(SigningKey.created_at.desc())
                    )
                ).all()
            signing = next((k for k in rows if k.superseded_at is None), None)
            if signing is not None:
                raw = self._cipher.decrypt(signing.private_key_enc, _context(signing.kid))
                self._signing = CompactSigner(signing.kid, Ed25519PrivateKey.from_private_bytes(raw))
            self._jwks = {"keys": [dict(k.public_jwk) for k in rows]}
            self._loaded_at = time.monotonic()

    async def reload(self) -> None:
        await self._refresh(force=True)

    async def jwks(self) -> dict[str, Any]:
        await self._refresh()
        return self._jwks

    async def jwks_for_unknown_kid(self, min_interval: float = 1.0) -> dict[str, Any]:
        """The key set after a token named a key we do not know: reload (at most once per ``min_interval``)."""
        if time.monotonic() - self._loaded_at >= min_interval:
            await self._refresh(force=True)
        return self._jwks

    async def sign(self, claims: dict[str, Any]) -> str:
        await self._refresh()
        if self._signing is None:
            await self._refresh(force=True)
        assert self._signing is not None, "no signing key: ensure_key runs at start-up"
        return self._signing.sign(claims)
