"""The argon2 pool is sized to the cores the process may really use (affinity, container CPU limit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
