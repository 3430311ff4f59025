"""Edge protections: client address behind trusted proxies, path hygiene, size limits, security headers."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.context import current_request_id
from kit.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, BadRequest, SuiteError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Headers a client could use to pose as someone: never forwarded. Services
#: authenticate the bearer token themselves, so these would only matter to a
#: careless consumer; stripping them removes the temptation.
IDENTITY_HEADER_PREFIXES = (
    b"x-auth",
    b"x-user",
    b"x-subject",
    b"x-principal",
    b"x-remote-user",
    b"x-forwarded-user",
    b"x-client-cert",
    b"x-ssl-client",
    b"x-gateway",
    b"x-verified",
    b"x-identity",
    b"x-scope",
    b"x-roles",
    b"x-acr",
    b"remote-user",
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    # The gateway serves JSON and one docs page without scripts; nothing may load or frame anything.
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class InvalidPath(BadRequest):
    code = "invalid_path"
    title = "The request path is not acceptable"


class PayloadTooLarge(SuiteError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


def is_identity_header(name: bytes) -> bool:
    return name.startswith(IDENTITY_HEADER_PREFIXES)


class TrustedProxies:
    """Which peers' ``X-Forwarded-For`` is believed, and the client address it yields.

    The client is the right-most address of the chain that is not a trusted
    proxy; with no trusted proxy configured (the default) or an untrusted
    peer, the header is ignored and the socket peer is the client.
    """

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

    def trusts(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage in the chain: fall back to what we know
        return hops[0] if hops else peer


def check_path(raw_path: bytes, path: str) -> None:
    """Refuse paths whose meaning could differ between the policy check and the service.

    Encoded slashes, dots and backslashes, dot segments, empty segments and
    control characters are refused outright, so the prefix the policy matched
    is the prefix the service routes on.
    """
    lowered = raw_path.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"%2e" in lowered or b"%00" in lowered or b"\\" in raw_path:
        raise InvalidPath("encoded separators are not accepted")
    if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        raise InvalidPath("dot or empty path segments are not accepted")
    if _CONTROL_CHARACTERS.search(path):
        raise InvalidPath("control characters are not accepted")


@functools.lru_cache(maxsize=4096)
def mask_ip(address: str) -> str:
    """The client's network for logs (/24 or /48), not the address itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _problem(status: int, code: str, title: str, detail: str) -> bytes:
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body).encode()


class EdgeMiddleware:
    """Header and declared-body size limits before anything else runs; security headers on every response."""

    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_body_bytes: int, hsts_max_age: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        headers = list(SECURITY_HEADERS)
        if hsts_max_age > 0:
            headers.append(("strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains"))
        self.security_headers = [(k.encode(), v.encode()) for k, v in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
        declared: int | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
        if size > self.max_header_bytes:
            await self._reject(send, 431, "headers_too_large", "Request headers too large", "Send fewer headers.")
            return
        if declared is not None and declared < 0:
            await self._reject(send, 400, "bad_request", "Bad request", "Content-Length is not a number.")
            return
        if declared is not None and declared > self.max_body_bytes:
            await self._reject(
                send, 413, "payload_too_large", "Request body too large", f"At most {self.max_body_bytes} bytes."
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                present = {k for k, _ in headers.raw}
                for name, value in self.security_headers:
                    if name not in present:
                        headers.raw.append((name, value))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _reject(self, send: Send, status: int, code: str, title: str, detail: str) -> None:
        body = _problem(status, code, title, detail)
        headers = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *self.security_headers,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
