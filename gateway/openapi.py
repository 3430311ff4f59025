"""One OpenAPI document for every route a client can call through the gateway, and a docs page.

Each service's ``/openapi.json`` is read from its upstream, its paths are
prefixed with ``/v1/<service>``, kept only when the policy table routes them
to a client audience (``service``-only routes, i.e. ``internal/``, and
prefixes with ``openapi = false`` stay out), and annotated with the policy
(``x-gateway-policy``). Schema names are prefixed with the service name so
two services' ``Problem`` never collide.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Mapping
from typing import Any

from gateway.policy import Audience, PolicyTable
from gateway.upstream import Upstream

logger = logging.getLogger("gateway.openapi")

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _rename_refs(node: Any, service: str) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                out[key] = f"#/components/schemas/{service}__{value.rsplit('/', 1)[1]}"
            else:
                out[key] = _rename_refs(value, service)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, service) for item in node]
    return node


def merge(documents: Mapping[str, Mapping[str, Any]], policy: PolicyTable, *, version: str) -> dict[str, Any]:
    """The aggregated document from each service's own (pure: tested without servers)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for service, document in sorted(documents.items()):
        for name, schema in (document.get("components", {}).get("schemas", {}) or {}).items():
            schemas[f"{service}__{name}"] = _rename_refs(schema, service)
        for path, item in (document.get("paths", {}) or {}).items():
            full = f"/v1/{service}{path}"
            template_free = full.split("{", 1)[0]
            route = policy.match(service, full) or policy.match(service, template_free)
            if route is None or not route.openapi or route.audience is Audience.service:
                continue
            operations: dict[str, Any] = {}
            for method, operation in item.items():
                if method not in _HTTP_METHODS:
                    operations[method] = _rename_refs(operation, service)
                    continue
                if route.methods is not None and method.upper() not in route.methods:
                    continue
                op = _rename_refs(operation, service)
                op["tags"] = [f"{service}: {tag}" for tag in op.get("tags", [])] or [service]
                if "operationId" in op:
                    op["operationId"] = f"{service}__{op['operationId']}"
                op["x-gateway-policy"] = {
                    "audience": route.audience.value,
                    "min_acr": route.min_acr,
                    "rate_class": route.rate_class,
                    "prefix": route.prefix,
                }
                if route.audience is not Audience.public:
                    op["security"] = [{"bearer": []}]
                operations[method] = op
            if any(m in operations for m in _HTTP_METHODS):
                paths[full] = operations
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bank security suite API",
            "version": version,
            "description": (
                "Every route a client can call through the gateway. `x-gateway-policy` on each operation "
                "names who may call it (audience), the assurance level it needs and its rate class."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


class OpenApiAggregator:
    """Fetches the services' documents (cached) and merges them."""

    def __init__(self, upstreams: Mapping[str, Upstream], policy: PolicyTable, *, cache_seconds: float) -> None:
        self.upstreams = upstreams
        self.policy = policy
        self.cache_seconds = cache_seconds
        self._cached: dict[str, Any] | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def _fetch(self, upstream: Upstream) -> tuple[str, Mapping[str, Any] | None]:
        import json

        try:
            answer = await upstream.client.send("GET", f"{upstream.base_url}/openapi.json", [], b"", 5.0)
            try:
                body = answer.body
                if body is None and answer.stream is not None:  # too large to buffer: read it whole
                    body = b"".join([chunk async for chunk in answer.stream])
            finally:
                await answer.close()
            if body is None or answer.status != 200:
                return upstream.name, None
            document: Mapping[str, Any] = json.loads(body)
        except Exception as exc:  # a service down or broken leaves only its routes out
            logger.warning("openapi of %s unavailable: %s", upstream.name, type(exc).__name__)
            return upstream.name, None
        return upstream.name, document

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._at < self.cache_seconds:
                return self._cached
            results = await asyncio.gather(*(self._fetch(u) for u in self.upstreams.values()))
            documents = {name: doc for name, doc in results if doc is not None}
            merged = merge(documents, self.policy, version="1")
            merged["info"]["x-services-missing"] = sorted(name for name, doc in results if doc is None)
            self._cached = merged
            self._at = time.monotonic()
            return merged


def docs_page(document: Mapping[str, Any]) -> str:
    """A script-free HTML page (the gateway's CSP forbids scripts): every route with its policy."""
    rows = []
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            if method not in _HTTP_METHODS:
                continue
            policy = op.get("x-gateway-policy", {})
            rows.append(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                    html.escape(method.upper()),
                    html.escape(path),
                    html.escape(str(policy.get("audience", ""))),
                    html.escape(str(policy.get("min_acr") or "")),
                    html.escape(str(policy.get("rate_class", ""))),
                    html.escape(str(op.get("summary", ""))),
                )
            )
    missing = document.get("info", {}).get("x-services-missing", [])
    note = f"<p>Services not answering now: {html.escape(', '.join(missing))}</p>" if missing else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Bank security suite API</title></head>"
        "<body><h1>Bank security suite API</h1>"
        "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a> (OpenAPI 3.1). "
        "Every call needs <code>Authorization: Bearer &lt;access token&gt;</code> unless its audience is public.</p>"
        f"{note}<table border=1 cellpadding=4><thead><tr><th>Method</th><th>Path</th><th>Audience</th>"
        "<th>Min. assurance</th><th>Rate class</th><th>Summary</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
