"""Request and response models of the transit (encryption-as-a-service) API.

Plaintexts and contexts travel base64-encoded (they are bytes: a TOTP seed,
a private key).
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, with_config
from typing_extensions import TypedDict

from services.vault.crypto.aead import Algorithm

# Base64 fields are checked by the strict decoder (a 400 problem), not by a per-item regex.
Plaintext64 = Annotated[str, StringConstraints(max_length=65_536)]
Context64 = Annotated[str, StringConstraints(max_length=1024)]
CiphertextText = Annotated[str, StringConstraints(max_length=100_000)]


@with_config(ConfigDict(extra="forbid"))
class EncryptItem(TypedDict):
    """One batch item. Batch items are typed dicts, not models: validating a thousand of them as
    models cost about four times as much, a visible share of a batch call."""

    plaintext: Plaintext64
    context: NotRequired[Context64]


class EncryptRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"plaintext": "c2VjcmV0IHNlZWQ=", "context": "YWNjb3VudDo0Mg=="}]},
    )

    plaintext: Plaintext64 = Field(description="Base64 of the bytes to encrypt.")
    context: Context64 = Field(default="", description="Base64 associated data (optional).")
    algorithm: Algorithm = Field(default=Algorithm.aes_256_gcm, description="Used only when this call creates the key.")


class EncryptBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[EncryptItem] = Field(min_length=1)
    algorithm: Algorithm = Algorithm.aes_256_gcm


@with_config(ConfigDict(extra="forbid"))
class CiphertextItem(TypedDict):
    """One batch item (`vault:v<version>:<base64>` and the context it was sealed with)."""

    ciphertext: CiphertextText
    context: NotRequired[Context64]


class DecryptRequest(BaseModel):
    ciphertext: CiphertextText = Field(description="`vault:v<version>:<base64>`.")
    context: Context64 = Field(default="", description="Base64 associated data (optional).")

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


class DataKeyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"algorithm": "aes-256-gcm", "context": "ZmlsZTo0Mg==", "include_plaintext": True}]
        },
    )

    algorithm: Algorithm = Field(
        default=Algorithm.aes_256_gcm,
        description="Algorithm of the data key (and of the transit key if this call creates it).",
    )
    context: Context64 = Field(default="", description="Base64 associated data bound to the wrapped key.")
    include_plaintext: bool = Field(
        default=True, description="False returns only the wrapped key (to be unwrapped later with decrypt)."
    )


class DataKey(BaseModel):
    plaintext: str | None = Field(description="Base64 of the new data key (use it, then forget it).")
    ciphertext: str = Field(description="The data key wrapped by this transit key: keep it next to the data.")
    key_version: int
    algorithm: Algorithm
