"""``make run``: the whole suite on one machine.

Starts an embedded PostgreSQL (data in ``.data/pg``) unless ``DATABASE_URL``
is set, prepares schemas, roles and migrations, starts the five services and
the gateway as separate processes, prints where each listens, and stops
everything on Ctrl-C. A child that dies is reported and brings the suite down
(with its exit code) rather than leaving a half-working suite behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops.database import ROOT, SERVICES, asyncpg_url, embedded_server_url, prepare
from services.identity.config import CORE_BANKING_CLIENT, CORE_BANKING_SCOPES

#: Where the embedded database and the logs live (git-ignored).
DATA_DIR = Path(os.environ.get("SUITE_DATA_DIR", ROOT / ".data"))


@dataclass
class Child:
    name: str
    port: int
    process: subprocess.Popen[bytes]


def _ports(base: int) -> dict[str, int]:
    ports = {"gateway": base}
    ports.update({service: base + index for index, service in enumerate(SERVICES, start=1)})
    return ports


def _spawn(name: str, target: str, port: int, env: dict[str, str], log_dir: Path) -> Child:
    log = (log_dir / f"{name}.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            # The gateway decides whom to believe for X-Forwarded-For (its trusted
            # proxies); uvicorn must not rewrite the client address before it does.
            "--no-proxy-headers",
            "--timeout-graceful-shutdown",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Child(name, port, process)


#: How long the suite may take to answer ``/status`` (a loaded machine imports five apps slowly).
READY_TIMEOUT = float(os.environ.get("SUITE_READY_TIMEOUT", "180"))


def _wait_ready(url: str, children: list[Child], timeout: float = READY_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if child.process.poll() is not None:
                return False
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def _stop(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            child.process.kill()


def main() -> int:
    base_port = int(os.environ.get("SUITE_PORT_BASE", "8000"))
    ports = _ports(base_port)
    log_dir = DATA_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    if os.environ.get("DATABASE_URL"):
        admin_url = asyncpg_url(os.environ["DATABASE_URL"])
        print("using the PostgreSQL server at DATABASE_URL")
    else:
        admin_url = embedded_server_url(DATA_DIR / "pg")
        print(f"embedded PostgreSQL running (data in {DATA_DIR / 'pg'})")
    prepared = asyncio.run(prepare(admin_url))
    print("schemas, roles and migrations ready")

    gateway_url = f"http://127.0.0.1:{base_port}"
    env = dict(os.environ)
    env.setdefault("SUITE_ENVIRONMENT", "development")
    env["SUITE_GATEWAY_URL"] = gateway_url
    for service in SERVICES:
        env[f"{service.upper()}_DATABASE_URL"] = prepared.service_urls[service]
        env[f"GATEWAY_{service.upper()}_URL"] = f"http://127.0.0.1:{ports[service]}"

    print(f"operator commands (python -m services.<name>.cli): set -a; . {_write_operator_env(env)}; set +a")
    _seed_first_admin(env)
    children = [_spawn(s, f"services.{s}.app:create", ports[s], env, log_dir) for s in SERVICES]
    children.append(_spawn("gateway", "gateway.app:create", ports["gateway"], env, log_dir))
    # Needs only the database: registered while the services start, so it adds nothing to the start-up.
    core_banking = _core_banking_client(env)

    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    if not _wait_ready(f"{gateway_url}/status", children):
        _report_dead(children, log_dir)
        _stop(children)
        print(
            f"the suite did not become ready within {READY_TIMEOUT:.0f}s (SUITE_READY_TIMEOUT); see {log_dir}",
            file=sys.stderr,
        )
        return 1

    print(f"\nThe suite is up (logs in {log_dir}):")
    for child in children:
        print(f"  {child.name:<12} http://127.0.0.1:{child.port}   (pid {child.process.pid})")
    print(f"\n  entry point   {gateway_url}   (every service ready: {gateway_url}/status)")
    if core_banking is not None:
        print(_core_banking_howto(gateway_url, *core_banking))
    print("Ctrl-C stops everything.\n", flush=True)

    exit_code = 0
    while not stopping:
        dead = [c for c in children if c.process.poll() is not None]
        if dead:
            _report_dead(children, log_dir)
            exit_code = 1
            break
        time.sleep(0.5)
    print("stopping...", flush=True)
    _stop(children)
    print("stopped.")
    return exit_code


def _write_operator_env(env: dict[str, str], path: Path | None = None) -> Path:
    """The settings the services' operator commands need to reach this suite (their databases, the gateway),
    as a shell file to source: without them a command would use the default database, not this suite's."""
    names = ["SUITE_ENVIRONMENT", "SUITE_GATEWAY_URL", *(f"{s.upper()}_DATABASE_URL" for s in SERVICES)]
    lines = [f"{name}={shlex.quote(env[name])}" for name in names if name in env]
    path = path or DATA_DIR / "suite.env"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # a file left by an older run keeps its mode through O_TRUNC
    return path


def _seed_first_admin(env: dict[str, str]) -> None:
    """identity's CLI creates the first admin once and prints its one-time password.

    (The service clients are registered by identity itself at start-up in development.)
    """
    result = subprocess.run(
        [sys.executable, "-m", "services.identity.cli", "create-admin", "--email", "admin@bank.example"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"could not create the first admin: {result.stderr.strip()[-300:]}", file=sys.stderr)
        return
    info = json.loads(result.stdout)
    if info.get("created"):
        print(
            f"first admin: user name {info['username']}, one-time password {info['one_time_password']} "
            f"(shown once; change it at the first login; staff id {info['id']})"
        )
    else:
        print(f"first admin {info['username']} exists (staff id {info['id']})")
    _grant_first_admin(env, str(info["id"]))


def _grant_first_admin(env: dict[str, str], staff_id: str) -> None:
    """permissions grants the admin role to that staff id, once (later grants need a second person)."""
    result = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "services.permissions.cli", "bootstrap-admin", staff_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        print(f"  {result.stdout.strip()}")
    elif "already in force" not in result.stderr:
        print(f"could not grant the first admin its role: {result.stderr.strip()[-300:]}", file=sys.stderr)


def _core_banking_client(env: dict[str, str]) -> tuple[str, str] | None:
    """identity's CLI registers (or, when it exists, re-keys) the development ``core-banking`` API client.

    Its secret is generated and shown once (identity keeps only a hash), so each start prints a fresh one.
    """
    scopes = [arg for scope in CORE_BANKING_SCOPES for arg in ("--scope", scope)]
    result = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [
            sys.executable,
            "-m",
            "services.identity.cli",
            "create-api-client",
            CORE_BANKING_CLIENT,
            *scopes,
            "--description",
            "development core banking system (make run)",
            "--rotate-if-exists",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"could not register the core-banking client: {result.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    info = json.loads(result.stdout)
    return str(info["client_id"]), str(info["client_secret"])


def _core_banking_howto(gateway_url: str, client_id: str, secret: str) -> str:
    """How the bank's core system gets a token and scores a transaction (printed by ``make run``)."""
    return f"""
Development API client for the bank's core system: {client_id} (scopes {" ".join(CORE_BANKING_SCOPES)})
  secret (shown once; a new one each start): {secret}
  get a token:
    TOKEN=$(curl -s {gateway_url}/v1/identity/public/oauth/token \\
      -d grant_type=client_credentials -d client_id={client_id} -d client_secret='{secret}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  score a transaction:
    curl -s {gateway_url}/v1/risk/internal/transactions/score -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"transaction_id": "tx-0001", "account_id": "ACC-1",
      "payee": "ACC-2", "amount_minor": 125000, "currency": "CNY", "occurred_at": "2026-12-01T08:00:00Z",
      "kind": "transfer", "channel": "mobile"}}'
"""


def _report_dead(children: list[Child], log_dir: Path) -> None:
    for child in children:
        code = child.process.poll()
        if code is None:
            continue
        print(
            f"\n!! {child.name} exited with code {code}; last lines of {log_dir / (child.name + '.log')}:",
            file=sys.stderr,
        )
        lines = (log_dir / f"{child.name}.log").read_text(errors="replace").splitlines()[-15:]
        for line in lines:
            print(f"   {line}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
