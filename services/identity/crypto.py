"""Field encryption and lookup indexes.

TOTP secrets, token signing keys, notification bodies and staff work emails
are encrypted with AES-256-GCM under keys derived (HKDF-SHA256) from one
configured secret, one key per purpose. The associated data binds a
ciphertext to its row and field, so a ciphertext copied to another row or
column does not decrypt. Customers' personal data is not here: it lives in
the vault (``services/identity/vault.py``). Lookups (login by phone or email,
uniqueness of the national ID) go through identity's own keyed HMAC "blind
index" of the normalised value, so they never need the vault.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12


class DecryptionFailed(Exception):
    """A ciphertext did not authenticate (wrong key, wrong row or tampered)."""


def _derive(secret: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"bank-suite-identity", info=purpose.encode()).derive(secret)


class FieldCipher:
    """AES-256-GCM for one purpose (``totp``, ``signing-key``...)."""

    def __init__(self, secret: str, purpose: str) -> None:
        self._aead = AESGCM(_derive(secret.encode(), f"aead:{purpose}"))

    def encrypt(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, blob: bytes, context: str) -> bytes:
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            raise DecryptionFailed("unknown ciphertext format")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], context.encode())
        except InvalidTag as exc:
            raise DecryptionFailed("ciphertext did not authenticate") from exc

    def encrypt_text(self, value: str, context: str) -> bytes:
        return self.encrypt(value.encode(), context)

    def decrypt_text(self, blob: bytes, context: str) -> str:
        return self.decrypt(blob, context).decode()


class BlindIndex:
    """Keyed HMAC of a normalised value: equality lookups without the plaintext."""

    def __init__(self, secret: str) -> None:
        self._key = _derive(secret.encode(), "blind-index")

    def __call__(self, kind: str, value: str) -> str:
        return hmac.digest(self._key, f"{kind}:{value}".encode(), "sha256").hex()


class Keyring:
    """Every key identity derives from ``data_encryption_key``."""

    def __init__(self, secret: str) -> None:
        self.staff_contact = FieldCipher(secret, "staff-contact")
        self.totp = FieldCipher(secret, "totp")
        self.signing = FieldCipher(secret, "signing-key")
        self.notification = FieldCipher(secret, "notification")
        self.index = BlindIndex(secret)


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy opaque token (refresh tokens, challenges): safe to store and look up."""
    return hashlib.sha256(token.encode()).hexdigest()
