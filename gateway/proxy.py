"""Streaming reverse proxy from ``/v1/<service>/<path>`` to the service's ``/<path>``."""

from __future__ import annotations

import logging

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from kit.context import REQUEST_ID_HEADER
from kit.errors import NotFound, ServiceUnavailable

logger = logging.getLogger("gateway.proxy")

#: RFC 9110 hop-by-hop headers, never forwarded in either direction.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


class UnknownService(NotFound):
    code = "unknown_route"
    title = "No such route"


class UpstreamDown(ServiceUnavailable):
    code = "upstream_unavailable"
    title = "The service behind this route is unavailable"


class UpstreamTimeout(ServiceUnavailable):
    status = 504
    code = "upstream_timeout"
    title = "The service behind this route did not answer in time"


def forwarded_headers(request: Request, request_id: str) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
    headers = [(k, v) for k, v in headers if k.lower() not in (REQUEST_ID_HEADER, "x-forwarded-for")]
    client = request.client.host if request.client else "unknown"
    prior = request.headers.get("x-forwarded-for")
    headers.append(("x-forwarded-for", f"{prior}, {client}" if prior else client))
    headers.append(("x-forwarded-proto", request.url.scheme))
    headers.append((REQUEST_ID_HEADER, request_id))
    return headers


async def forward(
    client: httpx.AsyncClient, upstreams: dict[str, str], service: str, path: str, request: Request
) -> StreamingResponse:
    base = upstreams.get(service)
    if base is None:
        raise UnknownService(f"no service named {service!r}")
    query = request.url.query
    url = httpx.URL(f"{base}/{path}" + (f"?{query}" if query else ""))
    upstream_request = client.build_request(
        request.method,
        url,
        headers=forwarded_headers(request, request.state.request_id),
        content=request.stream(),
    )
    try:
        response = await client.send(upstream_request, stream=True)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{service} did not answer in time") from exc
    except httpx.TransportError as exc:
        logger.warning("upstream %s unreachable: %s", service, type(exc).__name__)
        raise UpstreamDown(f"{service} is unavailable") from exc
    headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
    headers.pop(REQUEST_ID_HEADER, None)
    return StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        headers=headers,
        background=BackgroundTask(response.aclose),
    )
