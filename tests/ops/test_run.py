"""`make run` as a user sees it: everything comes up, Ctrl-C stops it, a crash is reported."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ops.database import ROOT

pytestmark = pytest.mark.flow


def free_port_block(size: int = 6) -> int:
    """A base port whose next ``size`` ports are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size >= 65535:
            continue
        try:
            for offset in range(size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no free block of ports")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded cluster for this module (initdb once), apart from the developer's .data/."""
    return tmp_path_factory.mktemp("make-run")


@pytest.fixture
def suite_process(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    base = free_port_block()
    env = dict(os.environ, SUITE_PORT_BASE=str(base), SUITE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 90) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} never printed; got:\n{''.join(seen)}")


def test_the_suite_comes_up_answers_and_stops_on_ctrl_c(suite_process: tuple[subprocess.Popen[str], int]) -> None:
    process, base = suite_process
    banner = read_until(process, "Ctrl-C stops everything")
    for name in ("gateway", "identity", "permissions", "vault", "risk", "incidents"):
        assert name in banner
    ready = httpx.get(f"http://127.0.0.1:{base}/readyz", timeout=5)
    assert ready.status_code == 200
    assert httpx.get(f"http://127.0.0.1:{base}/v1/vault/healthz", timeout=5).json() == {"status": "ok"}
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None
    assert "stopped." in process.stdout.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{base}/healthz", timeout=2)


def test_a_crashed_child_is_reported(suite_process: tuple[subprocess.Popen[str], int]) -> None:
    process, base = suite_process
    banner = read_until(process, "Ctrl-C stops everything")
    match = re.search(rf"vault\s+http://127\.0\.0\.1:{base + 3}\s+\(pid (\d+)\)", banner)
    assert match, banner
    os.kill(int(match.group(1)), signal.SIGKILL)
    assert process.wait(timeout=30) == 1
    assert process.stdout is not None
    assert "vault exited with code" in process.stdout.read()


def test_the_operator_env_file_points_the_commands_at_this_suite(tmp_path: Path) -> None:
    from ops.run import _write_operator_env

    env = {
        "SUITE_ENVIRONMENT": "development",
        "SUITE_GATEWAY_URL": "http://127.0.0.1:18100",
        "RISK_DATABASE_URL": "postgresql+asyncpg://suite_risk:@/postgres?host=%2Ftmp%2Fpg",
        "HOME": "/root",
    }
    path = _write_operator_env(env, tmp_path / "suite.env")
    sourced = subprocess.run(
        ["/bin/sh", "-c", f". {path}; echo $RISK_DATABASE_URL; echo $SUITE_GATEWAY_URL"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sourced.stdout.split() == [env["RISK_DATABASE_URL"], env["SUITE_GATEWAY_URL"]]
    assert "HOME" not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
