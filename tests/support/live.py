"""Real HTTP servers for flow tests: the gateway and services on loopback ports.

Each app runs under uvicorn inside the test process (so the in-memory span
exporter sees every span), on a socket bound to a free port, talking to the
others over real TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI


def bound_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # for sockets it recognises as TCP, and without it every response waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@dataclass
class LiveServer:
    name: str
    sock: socket.socket
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return url_of(self.sock)

    async def start(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # re-raise a start-up failure
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.server = None
            self.task = None


@dataclass
class LiveSuite:
    servers: dict[str, LiveServer] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.servers[name].url

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")


@contextlib.asynccontextmanager
async def live_suite(
    factories: Mapping[str, Callable[[Mapping[str, str]], FastAPI]],
) -> AsyncIterator[LiveSuite]:
    """Start every app; each factory gets the URLs of all servers (gateway included)."""
    suite = LiveSuite({name: LiveServer(name, bound_socket()) for name in factories})
    urls = {name: server.url for name, server in suite.servers.items()}
    try:
        for name, factory in factories.items():
            await suite.servers[name].start(factory(urls))
        yield suite
    finally:
        for server in reversed(list(suite.servers.values())):
            await server.stop()
