"""Gateway overhead: a trivial upstream direct, through our gateway, and through nginx.

Every target is a separate process on loopback; the load generator is this
process (aiohttp on uvloop, keep-alive, fixed concurrency). Measured in one run:

1. the trivial upstream called directly (the baseline);
2. our gateway with JWT verification (EdDSA, a fresh token per virtual
   client) and rate limiting on (memory storage, limits set high enough not
   to refuse), calling the upstream with aiohttp (its one upstream client: the
   own protocol-level client and httpx were measured here and removed, see
   docs/benchmarks.md);
3. nginx from Debian as a plain reverse proxy (skipped with a message when
   not installed).

Each target is first driven closed-loop to find its capacity (requests/s,
p50, p99), then the direct upstream and our gateway are driven open-loop at
half of the gateway's capacity, which reads off the gateway's own p99
overhead at that load. The machine is shared (2 cores: load generator,
gateway and upstream compete), so only the same-run ratios mean anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from bench.processes import ROOT, free_port, process, uvicorn_args

SERVICES = ("identity", "permissions", "vault", "risk", "incidents")
CONCURRENCY = 32
CAPACITY_SECONDS = 4.0
PACED_SECONDS = 4.0
WARMUP_SECONDS = 0.7
KID = "bench-key"
ISSUER = "bank-suite-identity"
AUDIENCE = "bank-suite"
PATH = "/customer/accounts/summary"

# --- the trivial upstream (also plays identity's JWKS, token and revocation routes) -------------


def upstream_app() -> Callable[..., Awaitable[None]]:
    """A raw ASGI app: the cheapest upstream uvicorn can serve (factory for ``uvicorn --factory``)."""
    key = serialization.load_pem_private_key(os.environ["BENCH_SIGNING_KEY"].encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=KID, alg="EdDSA", use="sig")
    service_token = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "gateway",
            "kind": "service",
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
        },
        key,
        algorithm="EdDSA",
        headers={"kid": KID},
    )
    bodies = {
        "/.well-known/jwks.json": json.dumps({"keys": [jwk]}).encode(),
        "/public/oauth/token": json.dumps(
            {"access_token": service_token, "token_type": "Bearer", "expires_in": 3600}
        ).encode(),
        "/internal/revocations": json.dumps({"revocations": [], "cursor": "0"}).encode(),
    }
    default = json.dumps({"accounts": [{"id": "a1", "balance_minor": 12345, "currency": "CNY"}]}).encode()

    async def app(
        scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            return
        body = bodies.get(scope["path"], default)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


# --- processes ----------------------------------------------------------------------------


def gateway_env(base: dict[str, str], upstream_port: int) -> dict[str, str]:
    env = dict(base)
    env.update({f"GATEWAY_{name.upper()}_URL": f"http://127.0.0.1:{upstream_port}" for name in SERVICES})
    env.update(
        GATEWAY_ENVIRONMENT="test",
        GATEWAY_ROUTES_DIR=str(ROOT / "gateway" / "routes"),
        # Limits on (every request counts against IP, subject and class) but high enough not to refuse.
        GATEWAY_RATE_LIMIT_IP="10000000/minute",
        GATEWAY_RATE_LIMIT_SUBJECT="10000000/minute",
        GATEWAY_JWKS_UPSTREAM_PATH="/.well-known/jwks.json",
    )
    return env


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location /v1/identity/ {{
            proxy_pass http://app/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

# --- load generation ----------------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    #: CPU time the serving process (and its children, for nginx) spent per request.
    cpu_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return self.percentile(0.50)

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


def tokens(key: Ed25519PrivateKey, count: int) -> list[str]:
    now = int(time.time())
    return [
        jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "kind": "customer", "sid": str(uuid.uuid4()),
             "acr": "aal2", "amr": ["pwd", "otp"], "jti": uuid.uuid4().hex, "iat": now, "exp": now + 900},
            key,
            algorithm="EdDSA",
            headers={"kid": KID},
        )
        for _ in range(count)
    ]  # fmt: skip


async def drive(
    name: str, url: str, headers: list[dict[str, str]], *, seconds: float, rate: float | None = None
) -> Result:
    """Closed loop with CONCURRENCY clients (rate None) or open loop at ``rate`` requests/s."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    latencies: list[float] = []
    errors = 0
    done = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(h: dict[str, str], record: bool) -> None:
            nonlocal errors, done
            started = time.perf_counter()
            try:
                async with session.get(url, headers=h) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            if record:
                if ok:
                    latencies.append(time.perf_counter() - started)
                    done += 1
                else:
                    errors += 1

        async def closed_loop(index: int, until: float, record: bool) -> None:
            h = headers[index % len(headers)]
            while time.perf_counter() < until:
                await one(h, record)

        warm_until = time.perf_counter() + WARMUP_SECONDS
        await asyncio.gather(*(closed_loop(i, warm_until, False) for i in range(CONCURRENCY)))
        started = time.perf_counter()
        if rate is None:
            await asyncio.gather(*(closed_loop(i, started + seconds, True) for i in range(CONCURRENCY)))
        else:
            pending: set[asyncio.Task[None]] = set()
            interval = 1.0 / rate
            n = 0
            while (now := time.perf_counter()) < started + seconds:
                due = started + n * interval
                if due > now:
                    await asyncio.sleep(due - now)
                task = asyncio.create_task(one(headers[n % len(headers)], True))
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
    return Result(name, done, errors, elapsed, latencies)


async def pipeline_cpu_us(key: Ed25519PrivateKey, requests: int = 3000) -> float:
    """CPU per request of the gateway's own work: its ASGI app called in process, the upstream stubbed.

    Everything but the sockets: middleware, span, policy, both rate limits, token (cached after
    the first use, as with a client's repeated requests), headers, metrics, access-log line.
    """
    from gateway.app import create
    from gateway.config import GatewaySettings
    from gateway.transport import UpstreamResponse

    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=KID, alg="EdDSA", use="sig")
    body = b'{"accounts":[]}'

    class Stubbed:
        async def send(self, *_: Any) -> UpstreamResponse:
            async def close() -> None:
                return None

            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            return UpstreamResponse(200, headers, body, None, close)

        async def aclose(self) -> None:
            return None

    urls: dict[str, Any] = {f"{name}_url": "http://127.0.0.1:9" for name in SERVICES}
    settings = GatewaySettings(
        environment="test", rate_limit_ip="1000000/second", rate_limit_subject="1000000/second", **urls
    )
    app = create(settings)
    tokens_ = [t.encode() for t in tokens(key, CONCURRENCY)]
    sent: list[int] = []

    async def one(index: int) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": f"/v1/identity{PATH}", "raw_path": f"/v1/identity{PATH}".encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"gw"), (b"authorization", b"Bearer " + tokens_[index % len(tokens_)])],
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                sent.append(message["status"])

        await app(scope, receive, send)

    async with app.router.lifespan_context(app):
        app.state.token_verifier.load_jwks({"keys": [jwk]})
        feed = app.state.revocation_feed
        feed._last_success = time.monotonic() + 3600  # as if just read: no identity in this measurement
        feed._synced.set()
        for upstream in app.state.upstreams.values():
            upstream.client = Stubbed()
        for i in range(200):
            await one(i)
        started = time.process_time()
        for i in range(requests):
            await one(i)
        spent = time.process_time() - started
    assert set(sent) == {200}, set(sent)
    return spent / requests * 1e6


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU of ``pid`` and its direct children (Linux /proc; None elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry.name) == pid or int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        return None
    return total


def measured(pid: int, run: Callable[[], Result]) -> Result:
    before = cpu_seconds(pid)
    result = run()
    after = cpu_seconds(pid)
    if before is not None and after is not None and result.requests:
        result.cpu_ms = (after - before) / result.requests * 1000
    return result


def row(result: Result, baseline: Result | None) -> str:
    ratio = f"{result.rps / baseline.rps:6.2f}x" if baseline and baseline.rps else "   -   "
    cpu = f"{result.cpu_ms:8.3f}" if result.cpu_ms is not None else "       -"
    return (
        f"  {result.name:<38} {result.rps:9.0f} {result.p50:8.2f} {result.p99:8.2f} {cpu}  {ratio}"
        f"{'  errors=' + str(result.errors) if result.errors else ''}"
    )


def report(
    *,
    results: list[Result],
    direct: Result,
    gateway: Result,
    nginx_result: Result | None,
    paced_direct: Result,
    paced_gateway: Result,
) -> None:
    print(f"\n  {'target':<38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>8}  vs direct")
    for result in results:
        print(row(result, direct))
    print(row(paced_direct, None))
    print(row(paced_gateway, None))
    best = gateway
    print("\nratios (same run):")
    print(f"  gateway/direct throughput         {best.rps / direct.rps:.2f}")
    if nginx_result is not None:
        print(f"  gateway/nginx throughput          {best.rps / nginx_result.rps:.2f}")
        print(f"  nginx/direct throughput           {nginx_result.rps / direct.rps:.2f}")
    print(f"  added p50 at capacity             {best.p50 - direct.p50:.2f} ms")
    print(
        f"  gateway overhead at half capacity p50 {paced_gateway.p50 - paced_direct.p50:.2f} ms, "
        f"p99 {paced_gateway.p99 - paced_direct.p99:.2f} ms (goal p99 < 3 ms)"
    )
    print(f"  authenticated requests/s per gateway worker {best.rps:.0f} measured (goal >= 1500)")
    if best.cpu_ms:
        print(
            f"  gateway CPU per request {best.cpu_ms:.3f} ms -> {1000 / best.cpu_ms:.0f} requests/s per worker "
            "with a core of its own (here it shares 2 cores with the load generator and the upstream)"
        )
    if best.errors or direct.errors:
        print(f"  errors: direct {direct.errors}, gateway {best.errors}")


def main() -> None:
    import uvloop  # ships with uvicorn[standard]

    def runner(coroutine: Coroutine[Any, Any, Result]) -> Result:
        return uvloop.run(coroutine)

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    env = dict(os.environ, BENCH_SIGNING_KEY=pem, PYTHONPATH=str(ROOT))
    upstream_port = free_port()
    auth_headers = [{"Authorization": f"Bearer {t}"} for t in tokens(key, CONCURRENCY)]
    results: list[Result] = []
    with contextlib.redirect_stdout(io.StringIO()):  # the in-process gateway's access-log lines
        own_us = uvloop.run(pipeline_cpu_us(key))
    print(f"loopback, {CONCURRENCY} keep-alive clients, {CAPACITY_SECONDS:.0f}s per target; cpus={os.cpu_count()}")
    with process(uvicorn_args("bench.bench_gateway:upstream_app", upstream_port), env, upstream_port) as upstream:
        direct = measured(upstream, lambda: runner(drive("direct upstream", f"http://127.0.0.1:{upstream_port}{PATH}",
                                                         auth_headers, seconds=CAPACITY_SECONDS)))  # fmt: skip
        results.append(direct)
        port = free_port()
        with process(uvicorn_args("gateway.app:create", port), gateway_env(env, upstream_port), port) as gw:
            time.sleep(1.0)  # first JWKS and revocation-feed reads
            url = f"http://127.0.0.1:{port}/v1/identity{PATH}"
            gateway = measured(gw, lambda: runner(drive("gateway JWT+limits (aiohttp)", url, auth_headers,
                                                        seconds=CAPACITY_SECONDS)))  # fmt: skip
            results.append(gateway)
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        nginx_result: Result | None = None
        if nginx is None:
            print("  nginx not installed: skipped (apt-get install -y nginx)")
        else:
            with tempfile.TemporaryDirectory() as prefix:
                port = free_port()
                conf = Path(prefix) / "nginx.conf"
                conf.write_text(NGINX_CONF.format(prefix=prefix, upstream=upstream_port, port=port))
                Path(prefix).chmod(0o755)  # nginx workers may run as another user
                with process([nginx, "-e", "stderr", "-c", str(conf), "-p", prefix], env, port) as master:
                    url = f"http://127.0.0.1:{port}/v1/identity{PATH}"
                    nginx_result = measured(master, lambda: runner(drive("nginx plain reverse proxy", url, auth_headers,
                                                                         seconds=CAPACITY_SECONDS)))  # fmt: skip
                    results.append(nginx_result)
        # Open loop at half the gateway's capacity: latency added by the gateway at that load.
        half = max(gateway.rps / 2, 50.0)
        paced_direct = runner(drive(f"direct upstream @ {half:.0f}/s", f"http://127.0.0.1:{upstream_port}{PATH}",
                                    auth_headers, seconds=PACED_SECONDS, rate=half))  # fmt: skip
        port = free_port()
        with process(uvicorn_args("gateway.app:create", port), gateway_env(env, upstream_port), port):
            time.sleep(1.0)
            paced_gateway = runner(drive(f"gateway @ {half:.0f}/s", f"http://127.0.0.1:{port}/v1/identity{PATH}",
                                         auth_headers, seconds=PACED_SECONDS, rate=half))  # fmt: skip

    report(
        results=results,
        direct=direct,
        gateway=gateway,
        nginx_result=nginx_result,
        paced_direct=paced_direct,
        paced_gateway=paced_gateway,
    )
    print(
        f"  gateway's own work per request (in process, upstream stubbed) {own_us:.0f} us CPU"
        f" -> {1e6 / own_us:.0f} requests/s per core before socket I/O"
    )


if __name__ == "__main__":
    main()
