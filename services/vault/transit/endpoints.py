"""Transit API for services: encrypt, decrypt, rewrap, one at a time or in batches.

Batches are all-or-nothing: one malformed or tampered item fails the whole
call with a 400 problem whose `errors` list the failing indexes, so a caller
never stores half a batch. Decrypt and rewrap calls are written to the access
log (one entry per call, with the count); encrypt calls are not (no personal
data leaves the vault), key creation is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from fastapi import APIRouter, Path, Response
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal, ServiceCaller
from kit.db import DBSession
from kit.errors import SuiteError
from services.vault.crypto.aead import Aead, Algorithm
from services.vault.errors import InvalidField
from services.vault.keys.service import LoadedRing
from services.vault.models import audit_log
from services.vault.state import Vault, VaultDep
from services.vault.transit import service
from services.vault.transit.schemas import (
    Ciphertext,
    CiphertextBatch,
    CiphertextItem,
    CiphertextList,
    DataKey,
    DataKeyRequest,
    DecryptRequest,
    EncryptBatch,
    EncryptItem,
    EncryptRequest,
    Plaintext,
    PlaintextList,
)

router = APIRouter(prefix="/internal/transit/keys", tags=["transit (services)"])

KeyName = Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")


async def _ring(
    session: AsyncSession, vault: Vault, name: str, caller: Principal, *, create: bool, algorithm: Algorithm
) -> LoadedRing:
    ring, created = await service.transit_ring(
        session,
        vault.keys,
        name,
        caller.subject,
        create=create and vault.settings.transit_autocreate,
        algorithm=algorithm,
    )
    if created:
        await audit_log.append(
            session,
            actor=caller.subject,
            actor_kind=caller.kind.value,
            action="vault.key.create",
            target=name,
            detail={"purpose": "transit", "algorithm": algorithm.value, "owner": caller.subject},
        )
    return ring


def _check_batch(vault: Vault, size: int) -> None:
    if size > vault.settings.transit_batch_max:
        raise InvalidField(
            f"a batch holds at most {vault.settings.transit_batch_max} items",
            errors=[{"field": "items", "reason": "too many"}],
        )


def _encrypt_all(ring: LoadedRing, items: Sequence[EncryptItem]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    errors: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            plaintext = service.b64(item["plaintext"], "plaintext")
            text = service.encrypt(ring, plaintext, service.b64(item.get("context", ""), "context"))
            results.append({"ciphertext": text, "key_version": ring.current_version})
        except SuiteError as exc:
            errors.append({"index": index, "code": exc.code})
    if errors:
        raise InvalidField("some items cannot be encrypted", errors=errors)
    return results


def _decrypt_all(ring: LoadedRing, items: Sequence[CiphertextItem]) -> list[tuple[int, bytes]]:
    opened: list[tuple[int, bytes]] = []
    errors: list[dict[str, object]] = []
    first: SuiteError | None = None
    # A batch usually repeats one context and one key version (or a few): the key and the
    # associated data of each distinct pair are resolved once, not per item. Only successes
    # are kept, so a bad context or a retired version fails every item that uses it.
    openers: dict[tuple[int, str], tuple[Aead, bytes]] = {}
    for index, item in enumerate(items):
        try:
            version, blob = service.parse(item["ciphertext"])
            context64 = item.get("context", "")
            opener = openers.get((version, context64))
            if opener is None:
                aad = service.transit_aad(ring, version, service.b64(context64, "context"))
                opener = openers[(version, context64)] = (ring.decryptor(version), aad)
            opened.append((version, service.open_blob(*opener, blob)))
        except SuiteError as exc:
            first = first or exc
            errors.append({"index": index, "code": exc.code})
    if first is not None:
        # The status and code of the first failure (integrity_error, key_version_retired, ...).
        raise type(first)(f"{len(errors)} of {len(items)} items failed", errors=errors)
    return opened


def fast_json(content: dict[str, object]) -> Response:
    """A batch answer serialised once: returning a Response skips FastAPI's re-validation of
    up to thousands of items against the response model (which still documents it)."""
    return Response(to_json(content), media_type="application/json")


async def _log(
    session: AsyncSession, *, caller: Principal, action: str, name: str, versions: Sequence[int], count: int
) -> None:
    await audit_log.append(
        session,
        actor=caller.subject,
        actor_kind=caller.kind.value,
        action=action,
        target=name,
        detail={"count": count, "versions": sorted(set(versions))},
    )


@router.post("/{name}/encrypt", response_model=Ciphertext)
async def encrypt(
    body: EncryptRequest, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> Ciphertext:
    """Encrypt with the key's current version (the key is created for the caller on first use)."""
    ring = await _ring(session, vault, name, caller, create=True, algorithm=body.algorithm)
    (result,) = _encrypt_all(ring, [{"plaintext": body.plaintext, "context": body.context}])
    return Ciphertext.model_validate(result)


@router.post("/{name}/encrypt/batch", response_model=CiphertextList)
async def encrypt_batch(
    body: EncryptBatch, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> Response:
    """Encrypt many plaintexts in one call (up to `transit_batch_max`)."""
    _check_batch(vault, len(body.items))
    ring = await _ring(session, vault, name, caller, create=True, algorithm=body.algorithm)
    return fast_json({"results": _encrypt_all(ring, body.items)})


@router.post("/{name}/decrypt", response_model=Plaintext)
async def decrypt(
    body: DecryptRequest, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> Plaintext:
    """Decrypt one ciphertext; a tampered one, or one given with another context, is a 400 `integrity_error`."""
    ring = await _ring(session, vault, name, caller, create=False, algorithm=Algorithm.aes_256_gcm)
    ((version, plain),) = _decrypt_all(ring, [{"ciphertext": body.ciphertext, "context": body.context}])
    await _log(session, caller=caller, action="vault.transit.decrypt", name=name, versions=[version], count=1)
    return Plaintext(plaintext=base64.b64encode(plain).decode(), key_version=version)


@router.post("/{name}/decrypt/batch", response_model=PlaintextList)
async def decrypt_batch(
    body: CiphertextBatch, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> Response:
    """Decrypt many ciphertexts in one call (all or nothing)."""
    _check_batch(vault, len(body.items))
    ring = await _ring(session, vault, name, caller, create=False, algorithm=Algorithm.aes_256_gcm)
    opened = _decrypt_all(ring, body.items)
    await _log(
        session,
        caller=caller,
        action="vault.transit.decrypt",
        name=name,
        versions=[v for v, _ in opened],
        count=len(opened),
    )
    encode = binascii.b2a_base64  # base64.b64encode without its per-call wrapper
    results = [{"plaintext": encode(p, newline=False).decode(), "key_version": v} for v, p in opened]
    return fast_json({"results": results})


def _rewrap_all(ring: LoadedRing, items: Sequence[CiphertextItem]) -> tuple[list[dict[str, object]], list[int]]:
    opened = _decrypt_all(ring, items)
    results: list[dict[str, object]] = [
        {
            "ciphertext": service.encrypt(ring, plain, service.b64(item.get("context", ""), "context")),
            "key_version": ring.current_version,
        }
        for (_, plain), item in zip(opened, items, strict=True)
    ]
    return results, [v for v, _ in opened]


@router.post("/{name}/rewrap", response_model=Ciphertext)
async def rewrap(
    body: DecryptRequest, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> Ciphertext:
    """Re-encrypt under the key's current version without the plaintext leaving the vault."""
    ring = await _ring(session, vault, name, caller, create=False, algorithm=Algorithm.aes_256_gcm)
    results, versions = _rewrap_all(ring, [{"ciphertext": body.ciphertext, "context": body.context}])
    await _log(session, caller=caller, action="vault.transit.rewrap", name=name, versions=versions, count=1)
    return Ciphertext.model_validate(results[0])


@router.post("/{name}/rewrap/batch", response_model=CiphertextList)
async def rewrap_batch(
    body: CiphertextBatch, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> Response:
    """Rewrap many ciphertexts in one call (all or nothing)."""
    _check_batch(vault, len(body.items))
    ring = await _ring(session, vault, name, caller, create=False, algorithm=Algorithm.aes_256_gcm)
    results, versions = _rewrap_all(ring, body.items)
    await _log(session, caller=caller, action="vault.transit.rewrap", name=name, versions=versions, count=len(results))
    return fast_json({"results": results})


@router.post("/{name}/datakey", response_model=DataKey)
async def datakey(
    body: DataKeyRequest, session: DBSession, vault: VaultDep, caller: ServiceCaller, name: str = KeyName
) -> DataKey:
    """A fresh data key for the caller's own envelope encryption (large blobs, files).

    Answers the key in clear (unless `include_plaintext` is false) and wrapped
    by this transit key; the caller encrypts locally, keeps only the wrapped
    key, and asks `.../decrypt` for it when it needs it again.
    """
    ring = await _ring(session, vault, name, caller, create=True, algorithm=body.algorithm)
    _, material = Aead.generate(body.algorithm)
    wrapped = service.encrypt(ring, material, service.b64(body.context, "context"))
    return DataKey(
        plaintext=base64.b64encode(material).decode() if body.include_plaintext else None,
        ciphertext=wrapped,
        key_version=ring.current_version,
        algorithm=body.algorithm,
    )
