"""The argon2 pool is sized to the cores the process may really use (affinity, container CPU limit); a stored
hash made with other parameters is flagged for a rehash."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, Type

from services.identity.config import IdentitySettings
from services.identity.passwords import hashing


@pytest.mark.parametrize(
    ("content", "cores"),
    [
        ("100000 100000\n", 1),  # limits.cpu: "1"
        ("150000 100000\n", 2),  # limits.cpu: "1.5" (a partial core still runs a thread)
        ("50000 100000\n", 1),  # limits.cpu: "500m"
        ("400000 100000\n", 4),
        ("max 100000\n", None),  # no limit
        ("", None),
        ("garbage here\n", None),
    ],
)
def test_the_container_cpu_limit_in_whole_cores(tmp_path: Path, content: str, cores: int | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(content)
    assert hashing.cgroup_cpu_limit(cpu_max) == cores


def test_no_cgroup_file_means_no_limit(tmp_path: Path) -> None:
    assert hashing.cgroup_cpu_limit(tmp_path / "missing") is None


AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("limit", "expected"),
    [("100000 100000", 1), ("max 100000", AFFINITY), (f"{(AFFINITY + 1) * 100000} 100000", AFFINITY)],
)
def test_the_pool_takes_the_smaller_of_affinity_and_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, expected: int
) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(limit + "\n")
    monkeypatch.setattr(hashing, "CGROUP_CPU_MAX", cpu_max)
    # A pod limited to one CPU on a bigger node hashes on one thread; no limit, or a limit above the
    # affinity, leaves the affinity.
    assert hashing.usable_cores() == expected


# --- Which stored hashes are rehashed at the next login


@pytest.fixture(scope="module")
def passwords() -> hashing.Passwords:
    return hashing.Passwords(IdentitySettings(environment="test"))


def test_a_hash_with_the_current_parameters_is_kept(passwords: hashing.Passwords) -> None:
    assert not passwords.needs_rehash(passwords.hash_sync("Quiet-Harbour-7-Lantern!"))


@pytest.mark.parametrize(
    "made_with",
    [
        {"time_cost": 3},  # stronger is still other parameters
        {"time_cost": 1, "memory_cost": 8192},  # an older, weaker setting
        {"salt_len": 24},  # same cost, another salt length
        {"hash_len": 16},
        {"type": Type.I},
    ],
)
def test_a_hash_with_other_parameters_is_rehashed(passwords: hashing.Passwords, made_with: dict[str, Any]) -> None:
    settings = IdentitySettings(environment="test")
    parameters: dict[str, Any] = {
        "time_cost": settings.argon2_time_cost,
        "memory_cost": settings.argon2_memory_kib,
        "parallelism": settings.argon2_parallelism,
        "type": Type.ID,
    }
    stored = PasswordHasher(**(parameters | made_with)).hash("Quiet-Harbour-7-Lantern!")
    assert passwords.needs_rehash(stored)


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=19456,t=2,p=1$", "$2b$12$" + "a" * 53])
def test_anything_else_is_rehashed(passwords: hashing.Passwords, stored: str) -> None:
    assert passwords.needs_rehash(stored)
