"""A stand-in for the suite's services behind the gateway.

It plays identity's part the gateway relies on (JWKS, client-credentials
token, revocation feed) with :class:`tests.support.tokens.TestIssuer`,
because identity's token endpoints are built separately; and it answers
every other path with an echo of what reached it, so tests can see what the
gateway forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kit.auth import InvalidToken, SubjectKind, bearer_token
from tests.support.live import LiveServer
from tests.support.tokens import TestIssuer

GATEWAY_SECRET = "dev-insecure-service-client-secret"


@dataclass
class StubState:
    issuer: TestIssuer
    revocations: list[dict[str, Any]] = field(default_factory=list)
    jwks_fetches: int = 0
    token_fetches: int = 0
    feed_reads: int = 0
    hits: int = 0
    feed_up: bool = True
    #: Keys published next to the issuer's own (rotation: old and new overlap).
    extra_keys: list[TestIssuer] = field(default_factory=list)
    publish_issuer_key: bool = True

    def revoke(self, session_id: str) -> None:
        now = datetime.now(UTC)
        self.revocations.append(
            {
                "session_id": session_id,
                "revoked_at": now.isoformat(),
                "expires_at": (now + timedelta(minutes=15)).isoformat(),
            }
        )


def stub_app(state: StubState) -> FastAPI:
    app = FastAPI(openapi_url="/openapi.json")
    verifier = state.issuer.verifier()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        state.jwks_fetches += 1
        published = ([state.issuer] if state.publish_issuer_key else []) + state.extra_keys
        return {"keys": [key for issuer in published for key in issuer.jwks()["keys"]]}

    @app.post("/public/oauth/token")
    async def token(request: Request) -> JSONResponse:
        state.token_fetches += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant_type, client_id = form.get("grant_type"), form.get("client_id", "")
        client_secret = form.get("client_secret")
        if grant_type != "client_credentials" or client_id != "gateway" or client_secret != GATEWAY_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        access = state.issuer.mint(client_id, kind="service", scope="revocations:read", extra={"sid": None})
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 300})

    @app.get("/internal/revocations")
    async def revocations(request: Request, after: int = 0) -> JSONResponse:
        state.feed_reads += 1
        if not state.feed_up:
            return JSONResponse({"error": "down"}, status_code=503)
        token = bearer_token(request)
        try:
            principal = await verifier.verify(token or "")
        except InvalidToken:
            return JSONResponse({"error": "unauthenticated"}, status_code=401)
        if principal.kind is not SubjectKind.service or principal.subject != "gateway":
            return JSONResponse({"error": "forbidden"}, status_code=403)
        page = state.revocations[after : after + 2]  # small pages: the follower must page through
        return JSONResponse({"revocations": page, "cursor": str(after + len(page))})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/public/items/{item_id}", summary="Read an item", tags=["items"])
    async def item(item_id: str) -> dict[str, str]:
        """Documented route (appears in the aggregated OpenAPI document)."""
        return {"id": item_id}

    @app.get("/public/chunked", include_in_schema=False)
    async def chunked() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(50):
                yield f"part-{i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/internal/secret-ops", summary="Internal only")
    async def internal_ops() -> dict[str, str]:
        return {"internal": "yes"}

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], include_in_schema=False)
    async def echo(path: str, request: Request) -> Response:
        state.hits += 1
        if path.endswith("slow"):
            await asyncio.sleep(float(request.query_params.get("seconds", "1")))
        if path.endswith("big"):
            return Response(b"x" * 600_000, media_type="application/octet-stream")
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "path": "/" + path,
                "query": request.url.query,
                "headers": [[k, v] for k, v in request.headers.items()],
                "body_bytes": len(body),
            }
        )

    return app


def bound_socket_on(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class EdgeServer(LiveServer):
    """A live server without uvicorn's own X-Forwarded-For handling (the gateway decides whom to trust).

    Deploy the gateway the same way: ``uvicorn --no-proxy-headers``.
    """

    async def start(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serve(name: str, app: FastAPI, port: int = 0) -> AsyncIterator[LiveServer]:
    server = EdgeServer(name, bound_socket_on(port))
    await server.start(app)
    try:
        yield server
    finally:
        await server.stop()
        server.sock.close()
