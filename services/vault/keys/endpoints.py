"""Key management for key custodians (`vault:key_rotate`): create, rotate, rewrap, retire."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal, RequireAcr
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.vault.access.policy import PERM_KEYS
from services.vault.crypto.aead import Algorithm
from services.vault.errors import JobNotFound, KeyNotFound, KeyPurposeMismatch
from services.vault.keys.rewrap import DONE, RUNNING, outstanding
from services.vault.keys.schemas import (
    CreateKey,
    KeyInfo,
    RewrapJobInfo,
    RootKeyStatus,
    RootRewrap,
    UpdateKey,
    VersionInfo,
)
from services.vault.keys.service import Purpose
from services.vault.models import DataKey, KeyRing, KeyVersion, RewrapJob, audit_log, utcnow
from services.vault.state import VaultDep

router = APIRouter(prefix="/staff/keys", tags=["keys"], dependencies=[Depends(RequireAcr("aal2"))])
root_router = APIRouter(prefix="/staff/root-key", tags=["keys"], dependencies=[Depends(RequireAcr("aal2"))])

Custodian = Annotated[Principal, Depends(RequirePermission(PERM_KEYS))]


async def key_info(session: AsyncSession, ring: KeyRing) -> KeyInfo:
    versions = (
        (
            await session.execute(
                select(KeyVersion).where(KeyVersion.key_ring_id == ring.id).order_by(KeyVersion.version)
            )
        )
        .scalars()
        .all()
    )
    counts: dict[int, int] = {}
    if ring.purpose == Purpose.records.value:
        counts = {
            v: int(n)
            for v, n in (
                await session.execute(
                    select(DataKey.kek_version, func.count())
                    .where(DataKey.key_ring_id == ring.id)
                    .group_by(DataKey.kek_version)
                )
            ).tuples()
        }
    return KeyInfo(
        name=ring.name,
        purpose=Purpose(ring.purpose),
        owner=ring.owner,
        algorithm=Algorithm(ring.algorithm),
        current_version=ring.current_version,
        min_decryption_version=ring.min_decryption_version,
        created_at=ring.created_at,
        updated_at=ring.updated_at,
        versions=[
            VersionInfo(
                version=v.version,
                created_at=v.created_at,
                root_key_id=v.root_key_id,
                retired=v.version < ring.min_decryption_version,
                data_keys=counts.get(v.version, 0) if ring.purpose == Purpose.records.value else None,
            )
            for v in versions
        ],
    )


async def _ring_row(session: AsyncSession, name: str) -> KeyRing:
    row = (await session.execute(select(KeyRing).where(KeyRing.name == name))).scalar_one_or_none()
    if row is None:
        raise KeyNotFound(f"no key named {name}")
    return row


def job_info(job: RewrapJob, key: str) -> RewrapJobInfo:
    return RewrapJobInfo(
        id=job.id,
        key=key,
        target_version=job.target_version,
        state=job.state,
        total=job.total,
        done=job.done,
        progress=round(job.done / job.total, 4) if job.total else 1.0,
        started_by=job.started_by,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


@router.get("", response_model=list[KeyInfo])
async def list_keys(session: DBSession, custodian: Custodian) -> list[KeyInfo]:
    """Every key ring with its versions and, for records keys, how many data keys each version wraps."""
    rows = (await session.execute(select(KeyRing).order_by(KeyRing.name))).scalars().all()
    return [await key_info(session, row) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyInfo)
async def create_key(body: CreateKey, session: DBSession, vault: VaultDep, custodian: Custodian) -> KeyInfo:
    """Create a key ring (version 1) with AES-256-GCM or SM4-GCM; records keys wrap data keys,
    transit keys encrypt for the service named as owner."""
    await vault.keys.create(session, body.name, purpose=body.purpose, algorithm=body.algorithm, owner=body.owner)
    await audit_log.append(
        session,
        actor=custodian.subject,
        action="vault.key.create",
        target=body.name,
        detail={"purpose": body.purpose.value, "algorithm": body.algorithm.value, "owner": body.owner},
    )
    return await key_info(session, await _ring_row(session, body.name))


@router.get("/{name}", response_model=KeyInfo)
async def get_key(name: str, session: DBSession, custodian: Custodian) -> KeyInfo:
    """One key ring with its versions."""
    return await key_info(session, await _ring_row(session, name))


@router.post("/{name}/rotate", response_model=KeyInfo)
async def rotate_key(name: str, session: DBSession, vault: VaultDep, custodian: Custodian) -> KeyInfo:
    """Add a new version; new writes use it at once (other replicas within `key_cache_seconds`),
    older versions keep decrypting until retired."""
    ring = await vault.keys.rotate(session, name)
    await audit_log.append(
        session,
        actor=custodian.subject,
        action="vault.key.rotate",
        target=name,
        detail={"version": ring.current_version, "algorithm": ring.algorithm.value},
    )
    return await key_info(session, await _ring_row(session, name))


@router.patch("/{name}", response_model=KeyInfo)
async def update_key(name: str, body: UpdateKey, session: DBSession, vault: VaultDep, custodian: Custodian) -> KeyInfo:
    """Set `min_decryption_version`: versions below it are retired and stop decrypting.

    Refused with 409 `key_version_in_use` while data keys are still wrapped
    under a version it would retire (start a rewrap first). For transit keys
    the ciphertexts live with the services, which rewrap them with
    `.../rewrap` before the custodian retires a version.
    """
    before = await _ring_row(session, name)
    previous = before.min_decryption_version
    ring = await vault.keys.set_min_decryption_version(session, name, body.min_decryption_version)
    await audit_log.append(
        session,
        actor=custodian.subject,
        action="vault.key.min_decryption_version",
        target=name,
        detail={"from": previous, "to": ring.min_decryption_version},
    )
    return await key_info(session, await _ring_row(session, name))


@router.post("/{name}/rewrap", status_code=status.HTTP_202_ACCEPTED, response_model=RewrapJobInfo)
async def start_rewrap(name: str, session: DBSession, vault: VaultDep, custodian: Custodian) -> RewrapJobInfo:
    """Start (or join) the background rewrap of a records key's data keys to its current version.

    Answers the job with its progress; poll `GET .../rewrap-jobs/{id}`.
    """
    ring = await vault.keys.get(session, name, fresh=True)
    if ring.purpose is not Purpose.records:
        raise KeyPurposeMismatch("transit ciphertexts live with the services: they call .../rewrap themselves")
    running = (
        await session.execute(
            select(RewrapJob).where(RewrapJob.key_ring_id == ring.id, RewrapJob.state == RUNNING).limit(1)
        )
    ).scalar_one_or_none()
    if running is not None:
        return job_info(running, name)
    total = await outstanding(session, ring.id, ring.current_version)
    job = RewrapJob(
        id=uuid.uuid4(),
        key_ring_id=ring.id,
        target_version=ring.current_version,
        state=RUNNING if total else DONE,
        total=total,
        done=0,
        started_by=custodian.subject,
        created_at=utcnow(),
        finished_at=None if total else utcnow(),
    )
    session.add(job)
    await session.flush()
    await audit_log.append(
        session,
        actor=custodian.subject,
        action="vault.key.rewrap_started",
        target=name,
        detail={"job": str(job.id), "version": ring.current_version, "data_keys": total},
    )
    return job_info(job, name)


@router.get("/{name}/rewrap-jobs/{job_id}", response_model=RewrapJobInfo)
async def rewrap_progress(name: str, job_id: uuid.UUID, session: DBSession, custodian: Custodian) -> RewrapJobInfo:
    """Progress of a rewrap job."""
    ring = await _ring_row(session, name)
    job = (
        await session.execute(select(RewrapJob).where(RewrapJob.id == job_id, RewrapJob.key_ring_id == ring.id))
    ).scalar_one_or_none()
    if job is None:
        raise JobNotFound(f"no rewrap job {job_id} for key {name}")
    return job_info(job, name)


@root_router.get("", response_model=RootKeyStatus)
async def root_key_status(session: DBSession, vault: VaultDep, custodian: Custodian) -> RootKeyStatus:
    """Which root key wraps how many KEK versions (a root rotation is done when only the current one does)."""
    return RootKeyStatus(
        current=vault.keys.root.key_id,
        previous_configured=sorted(vault.keys.previous_roots),
        kek_versions=await vault.keys.root_usage(session),
    )


@root_router.post("/rewrap", response_model=RootRewrap)
async def rewrap_root(session: DBSession, vault: VaultDep, custodian: Custodian) -> RootRewrap:
    """Root-key rotation: rewrap every KEK version still under an earlier root with the current one.

    Deploy the new root as `VAULT_ROOT_KEY`/`VAULT_ROOT_KEY_ID` with the old one
    in `VAULT_PREVIOUS_ROOT_KEYS`, call this until `remaining` is 0, then remove
    the old root. Data keys and data are untouched.
    """
    rewrapped, remaining = await vault.keys.rewrap_root(session)
    await audit_log.append(
        session,
        actor=custodian.subject,
        action="vault.root_key.rewrap",
        target=vault.keys.root.key_id,
        detail={"rewrapped": rewrapped, "remaining": remaining},
    )
    return RootRewrap(root_key_id=vault.keys.root.key_id, rewrapped=rewrapped, remaining=remaining)
