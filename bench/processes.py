"""Server processes for the benchmarks, and the CPU they (and PostgreSQL) use.

Benchmarks that run a service as it is deployed start it with uvicorn in a
child process and drive it over loopback. On a shared machine the wall-clock
rates move with whatever else runs; the CPU time a process spent per request
(from ``/proc``) is the steadier figure, and it is the one that says how many
requests a core of that service serves.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], port: int, *, timeout: float = 20.0, cpus: set[int] | None = None
) -> Iterator[int]:
    """Start ``args`` (on ``cpus`` only, if given), wait until ``port`` accepts, yield the pid; stop it afterwards.

    The child's stderr goes to a temporary file, not a pipe: nothing reads a pipe while the bench runs,
    and a server that logs more than the pipe holds (64 KiB) would block on its next log line. Its tail is
    printed when the bench fails while the child runs."""
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        if cpus is not None:
            # Set before the interpreter has started any thread: every thread it starts inherits it.
            os.sched_setaffinity(child.pid, cpus)
        if not wait_port(port, timeout):
            child.kill()
            child.wait(timeout=5)
            errors.seek(0)
            raise RuntimeError(f"{args[:4]} did not start: {errors.read().decode(errors='replace')[-800:]}")
        try:
            yield child.pid
        except BaseException:
            errors.seek(0)
            print(f"{args[:4]} stderr, last lines:\n{errors.read().decode(errors='replace')[-2000:]}", file=sys.stderr)
            raise
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)


def uvicorn_args(target: str, port: int) -> list[str]:
    """uvicorn as the manifests run it (one worker, no access log), with uvloop and httptools."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", target, "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-proxy-headers",
        "--log-level", "warning", "--backlog", "2048",
    ]  # fmt: skip


def _stat_cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads) so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process's first thread (for an asyncio server: its event loop)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def pids_named(command: str) -> list[int]:
    """The running processes whose name is ``command`` (e.g. ``postgres``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            raw = (entry / "stat").read_text()
            if raw[raw.index("(") + 1 : raw.rindex(")")] == command:
                found.append(int(entry.name))
    return found


def command_cpu_seconds(command: str) -> float:
    """User + system CPU of every running process whose name is ``command``."""
    total = 0.0
    for pid in pids_named(command):
        with contextlib.suppress(OSError, IndexError, ValueError):  # a process may exit meanwhile
            total += process_cpu_seconds(pid)
    return total


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds spent during one measured phase."""

    server: float
    database: float
    wall: float
    #: Of ``server``, what its main thread (the event loop) spent.
    server_main: float = 0.0


@contextlib.contextmanager
def cpu_use(server_pid: int) -> Iterator[list[CpuUse]]:
    """Measure the server's and PostgreSQL's CPU across the ``with`` block (the result is appended)."""
    result: list[CpuUse] = []
    server, main = process_cpu_seconds(server_pid), main_thread_cpu_seconds(server_pid)
    database, started = command_cpu_seconds("postgres"), time.perf_counter()
    yield result
    result.append(
        CpuUse(
            server=process_cpu_seconds(server_pid) - server,
            database=command_cpu_seconds("postgres") - database,
            wall=time.perf_counter() - started,
            server_main=main_thread_cpu_seconds(server_pid) - main,
        )
    )


def pin_command(command: str, cpus: set[int]) -> None:
    """Move every running process named ``command`` (e.g. ``postgres``: children it forks later follow
    the postmaster) onto ``cpus``."""
    for pid in pids_named(command):
        with contextlib.suppress(OSError):  # a process may exit meanwhile
            os.sched_setaffinity(pid, cpus)
