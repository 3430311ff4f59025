"""Encryption as a service: named, versioned keys that encrypt the services' own secrets.

A transit ciphertext is ``vault:v<version>:<base64(nonce || ciphertext || tag)>``;
the version tells which key version opens it. Associated data binds it to
the key's identity, the version and the caller's optional context (e.g.
identity passes the account id when sealing a TOTP secret), so a ciphertext
relabelled with another version, used with another key, or presented with
another context fails authentication.
"""

from __future__ import annotations

import base64
import binascii
import functools
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.vault.crypto.aead import Aead, Algorithm, IntegrityError
from services.vault.errors import CiphertextIntegrity, KeyNotFound, KeyPurposeMismatch, MalformedCiphertext, NotAllowed
from services.vault.keys.service import KeyStore, LoadedRing, Purpose


@functools.lru_cache(maxsize=4096)
def _aad_prefix(ring_id: uuid.UUID, version: int) -> bytes:
    return f"vault-transit:v1:{ring_id}:{version}:".encode()


def transit_aad(ring: LoadedRing, version: int, context: bytes) -> bytes:
    # The prefix is cached: formatting a UUID per item was a visible share of a batch's cost.
    return _aad_prefix(ring.id, version) + context


def parse(ciphertext: str) -> tuple[int, bytes]:
    """``vault:v<n>:<base64>`` to (n, bytes); string splitting, as this runs once per batch item."""
    marker, _, rest = ciphertext.partition(":v")
    version, _, body = rest.partition(":")
    if marker != "vault" or not version.isdigit() or not version.isascii() or len(version) > 9 or not body:
        raise MalformedCiphertext("expected vault:v<version>:<base64>")
    try:
        return int(version), strict_b64decode(body)
    except ValueError as exc:
        raise MalformedCiphertext("the ciphertext is not valid base64") from exc


def strict_b64decode(data: str) -> bytes:
    """Strict base64: only the alphabet, padding only at the end (``ValueError`` otherwise).

    ``binascii`` in strict mode refuses at least everything ``b64decode(validate=True)``
    refuses (and data after the padding too), without its per-call regex: this runs
    twice per batch item. A non-ASCII ``str`` raises ``ValueError``, not ``binascii.Error``.
    """
    return binascii.a2b_base64(data, strict_mode=True)


def b64(data: str, what: str) -> bytes:
    try:
        return strict_b64decode(data)
    except ValueError as exc:
        raise MalformedCiphertext(f"{what} is not valid base64") from exc


async def transit_ring(
    session: AsyncSession,
    keys: KeyStore,
    name: str,
    caller: str,
    *,
    create: bool = False,
    algorithm: Algorithm = Algorithm.aes_256_gcm,
) -> tuple[LoadedRing, bool]:
    """The caller's transit key ``name`` (created for it on first encrypt when allowed)."""
    ring = await keys.find(session, name)
    created = False
    if ring is None:
        if not create:
            raise KeyNotFound(f"no key named {name}")
        ring, created = await keys.create(
            session, name, purpose=Purpose.transit, algorithm=algorithm, owner=caller, if_missing=True
        )
    if ring.purpose is not Purpose.transit:
        raise KeyPurposeMismatch(f"key {name} is not a transit key")
    if ring.owner != caller:
        # The same answer as for a key that does not exist would hide its
        # existence, but a clear refusal is more useful to an operator and the
        # key names are not secret.
        raise NotAllowed(f"key {name} belongs to another service")
    return ring, created


def encrypt(ring: LoadedRing, plaintext: bytes, context: bytes) -> str:
    version, aead = ring.encryptor()
    blob = aead.seal(plaintext, transit_aad(ring, version, context))
    return f"vault:v{version}:{base64.b64encode(blob).decode()}"


def open_blob(aead: Aead, aad: bytes, blob: bytes) -> bytes:
    """Open a parsed ciphertext with the key version's AEAD and its :func:`transit_aad`."""
    try:
        return aead.open(blob, aad)
    except IntegrityError as exc:
        raise CiphertextIntegrity("the ciphertext does not authenticate under this key and context") from exc
