"""Request and response models of the transit (encryption-as-a-service) API.

Plaintexts and contexts travel base64-encoded (they are bytes: a TOTP seed,
a private key).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.vault.crypto.aead import Algorithm

B64 = r"^[A-Za-z0-9+/]*={0,2}$"


class EncryptItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plaintext: str = Field(max_length=65_536, pattern=B64, description="Base64 of the bytes to encrypt.")
    context: str = Field(default="", max_length=1024, pattern=B64, description="Base64 associated data (optional).")


class EncryptRequest(EncryptItem):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"plaintext": "c2VjcmV0IHNlZWQ=", "context": "YWNjb3VudDo0Mg=="}]},
    )

    algorithm: Algorithm = Field(default=Algorithm.aes_256_gcm, description="Used only when this call creates the key.")


class EncryptBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EncryptItem] = Field(min_length=1)
    algorithm: Algorithm = Algorithm.aes_256_gcm


class CiphertextItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ciphertext: str = Field(max_length=100_000, description="`vault:v<version>:<base64>`.")
    context: str = Field(default="", max_length=1024, pattern=B64)


class DecryptRequest(CiphertextItem):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"ciphertext": "vault:v1:8VeV0m1xvY3mQ8QJ0vA2yXJx...", "context": "YWNjb3VudDo0Mg=="}]
        },
    )


class CiphertextBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[CiphertextItem] = Field(min_length=1)


class Ciphertext(BaseModel):
    ciphertext: str
    key_version: int


class Plaintext(BaseModel):
    plaintext: str = Field(description="Base64 of the decrypted bytes.")
    key_version: int


class CiphertextList(BaseModel):
    results: list[Ciphertext]


class PlaintextList(BaseModel):
    results: list[Plaintext]
