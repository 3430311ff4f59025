"""Keyed blind index: exact-match lookup without decrypting.

``HMAC-SHA256(k_type, normalised value)`` with one key per field type derived
from the ``blind_index_key`` setting, so an index value of a phone number
cannot be compared with one of a national ID, and nobody without the key can
test guesses against the table (a plain hash of an 18-digit ID with a
checksum would fall to enumeration in minutes). It reveals equality between
records of the same type, which is what a lookup needs and all it reveals.
"""

from __future__ import annotations

import hashlib
import hmac

from services.vault.crypto.root import derive_key


class BlindIndexer:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._keys: dict[str, bytes] = {}

    def _key(self, field_type: str) -> bytes:
        key = self._keys.get(field_type)
        if key is None:
            key = derive_key(self._secret, f"blind-index:{field_type}")
            self._keys[field_type] = key
        return key

    def index(self, field_type: str, normalised: str) -> bytes:
        return hmac.new(self._key(field_type), normalised.encode(), hashlib.sha256).digest()
