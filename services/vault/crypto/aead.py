"""Authenticated encryption with the two algorithms the vault offers.

Both are used through pyca/cryptography (OpenSSL underneath); no cipher code
of our own. AES-256-GCM goes through ``AESGCM``; SM4 has no AEAD class in
cryptography, so SM4-GCM goes through ``Cipher(algorithms.SM4, modes.GCM)``,
which OpenSSL implements as real GCM (checked against the RFC 8998 test vector
in the tests). Both use a random 96-bit nonce and a 128-bit tag; a sealed blob
is ``nonce || ciphertext || tag``.
"""

from __future__ import annotations

import enum
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
TAG_BYTES = 16


class Algorithm(enum.StrEnum):
    aes_256_gcm = "aes-256-gcm"
    sm4_gcm = "sm4-gcm"

    @property
    def key_bytes(self) -> int:
        return 32 if self is Algorithm.aes_256_gcm else 16


class IntegrityError(Exception):
    """A ciphertext failed authentication: tampered, truncated, or bound to other data."""


class Aead:
    """One key of one algorithm; seal and open with associated data."""

    __slots__ = ("_aes", "_key", "algorithm")

    def __init__(self, algorithm: Algorithm, key: bytes) -> None:
        if len(key) != algorithm.key_bytes:
            raise ValueError(f"{algorithm.value} needs a {algorithm.key_bytes}-byte key")
        self.algorithm = algorithm
        self._key = key
        self._aes = AESGCM(key) if algorithm is Algorithm.aes_256_gcm else None

    @classmethod
    def generate(cls, algorithm: Algorithm) -> tuple[Aead, bytes]:
        key = os.urandom(algorithm.key_bytes)
        return cls(algorithm, key), key

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        if self._aes is not None:
            return nonce + self._aes.encrypt(nonce, plaintext, aad)
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return nonce + body + encryptor.tag

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise IntegrityError("ciphertext too short")
        nonce = blob[:NONCE_BYTES]
        try:
            if self._aes is not None:
                return self._aes.decrypt(nonce, blob[NONCE_BYTES:], aad)
            tag = blob[-TAG_BYTES:]
            decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
            decryptor.authenticate_additional_data(aad)
            return decryptor.update(blob[NONCE_BYTES:-TAG_BYTES]) + decryptor.finalize()
        except InvalidTag as exc:
            raise IntegrityError("ciphertext failed authentication") from exc
