"""argon2id password hashing at OWASP parameters or stronger.

Verification runs in a worker thread so the event loop keeps serving other
requests while argon2 burns its memory and CPU. The workers are one pool per
process with one thread per usable core (the affinity, capped by the
container's CPU limit): argon2 cannot go faster than the
cores, and more hashing threads than cores only take CPU away from the event
loop (whose requests, holding row and audit locks, then take longer and hold
everyone else up). A hash made with older parameters verifies and is flagged
for a rehash at the next login.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.identity.config import IdentitySettings

#: cgroup v2 CPU limit of this container (what Kubernetes' ``resources.limits.cpu`` becomes).
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_limit(cpu_max: Path | None = None) -> int | None:
    """Whole cores the cgroup quota allows (at least 1), or None when there is no quota.

    The file reads ``"<quota> <period>"`` in microseconds, or ``"max <period>"``.
    """
    try:
        quota, period = (cpu_max or CGROUP_CPU_MAX).read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """Cores this process may run on: the CPU affinity, capped by a container's CPU limit.

    The affinity alone shows every core of the node in a pod limited to one
    CPU; a pool that size would spend the quota in threads the CFS throttles.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return min(cores, limit) if limit is not None else cores


@functools.cache
def _hashing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=usable_cores(), thread_name_prefix="argon2")


class Passwords:
    def __init__(self, settings: IdentitySettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Verified against when the account does not exist, so an unknown user
        # costs the same time as a wrong password.
        self._dummy = self._hasher.hash("not-a-real-password-just-for-timing")
        # A hash made with the current parameters starts like this one and is as long (same salt and
        # hash lengths): checked at every login without parsing the hash.
        self._current_prefix = self._dummy[: self._dummy.rindex("$", 0, self._dummy.rindex("$")) + 1]

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), self._hasher.hash, password)

    def verify_sync(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), self.verify_sync, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        if len(stored) == len(self._dummy) and stored.startswith(self._current_prefix):
            return False
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
