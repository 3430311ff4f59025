"""The vault's runtime objects, built in the app's lifespan and reached through a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from kit.permissions import Decision
from services.vault.config import VaultSettings
from services.vault.crypto.aead import Algorithm
from services.vault.crypto.blind import BlindIndexer
from services.vault.crypto.root import LocalRootKey, RootKeyProvider
from services.vault.keys.service import KeyStore


class PermissionGate(Protocol):
    """What the vault needs of the permissions service (``kit.permissions.PermissionClient``)."""

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision: ...

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]: ...


@dataclass
class Vault:
    settings: VaultSettings
    keys: KeyStore
    indexer: BlindIndexer

    @classmethod
    def from_settings(cls, settings: VaultSettings, root: RootKeyProvider | None = None) -> Vault:
        algorithm = Algorithm(settings.root_algorithm)
        root = root or LocalRootKey(settings.root_key.get_secret_value(), settings.root_key_id, algorithm)
        previous: dict[str, RootKeyProvider] = {
            key_id: LocalRootKey(secret.get_secret_value(), key_id, algorithm)
            for key_id, secret in settings.previous_root_keys.items()
            if key_id != root.key_id
        }
        return cls(
            settings=settings,
            keys=KeyStore(root, previous_roots=previous, cache_seconds=settings.key_cache_seconds),
            indexer=BlindIndexer(settings.blind_index_key.get_secret_value()),
        )


def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def get_gate(request: Request) -> PermissionGate:
    gate: PermissionGate = request.app.state.permission_client
    return gate


VaultDep = Annotated[Vault, Depends(get_vault)]
GateDep = Annotated[PermissionGate, Depends(get_gate)]
