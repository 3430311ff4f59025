"""The root of the key hierarchy, behind an interface an external KMS can implement.

The root key wraps the key-encryption keys (KEKs) and nothing else; it never
touches personal data. :class:`LocalRootKey` derives the wrapping key from a
secret setting (a Kubernetes secret in production). A cloud or HSM KMS plugs
in by implementing :class:`RootKeyProvider` (``wrap``/``unwrap`` are the
``Encrypt``/``Decrypt`` calls of AWS KMS, GCP KMS or a PKCS#11 HSM); only the
few KEKs cross that boundary, so its latency is paid once per KEK per cache
period, never per field.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.vault.crypto.aead import Aead, Algorithm


class RootKeyProvider(Protocol):
    @property
    def key_id(self) -> str: ...

    def wrap(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """HKDF-SHA256 of a configured secret, one independent key per purpose."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"bank-suite-vault", info=purpose.encode()).derive(
        secret
    )


class LocalRootKey:
    """Root key derived from a secret setting; wraps with AES-256-GCM or SM4-GCM."""

    def __init__(self, secret: str, key_id: str, algorithm: Algorithm = Algorithm.aes_256_gcm) -> None:
        if len(secret.encode()) < 16:
            raise ValueError("the root key secret is too short (32+ random bytes expected)")
        self._key_id = key_id
        self._aead = Aead(algorithm, derive_key(secret.encode(), "root-kek-wrapping", algorithm.key_bytes))

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        return self._aead.seal(key, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        return self._aead.open(blob, aad)
