"""The route policy table, loaded from ``gateway/routes/*.toml``.

Each service keeps its own file (format in the header comment of those files).
Longest matching prefix wins; a prefix matches the path itself and the subtree
below it (``/v1/x/public/`` matches ``/v1/x/public/login``; ``/v1/x/healthz``
matches ``/v1/x/healthz`` and ``/v1/x/healthz/...`` but not ``/v1/x/healthzz``).
A path that matches no entry is refused with 404 and never forwarded.

Format extensions (compatible; older files stay valid):
  ``openapi = false``  keep the prefix out of the aggregated OpenAPI document.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kit.auth import ACR_LEVELS, Principal, SubjectKind

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Route classes with a limit of their own per client address and per subject
#: (``GATEWAY_RATE_LIMIT_CLASSES``): ``login`` password guessing, ``otp`` sending or
#: checking a one-time code, ``register`` a new customer's sign-up and its contact
#: checks, ``token`` the OAuth2 token endpoint services use (apart from customers' login).
RATE_CLASSES = frozenset({"default", "login", "otp", "register", "token"})


class Audience(enum.StrEnum):
    public = "public"
    customer = "customer"
    staff = "staff"
    service = "service"
    user = "user"  # customer or staff
    any = "any"  # any valid token

    def admits(self, principal: Principal) -> bool:
        match self:
            case Audience.public | Audience.any:
                return True
            case Audience.user:
                return principal.kind in (SubjectKind.customer, SubjectKind.staff)
            case _:
                return principal.kind.value == self.value


class PolicyError(ValueError):
    """A route file is malformed (raised at start-up: a gateway never runs on a broken table)."""


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    prefix: str
    service: str
    audience: Audience
    methods: frozenset[str] | None = None
    min_acr: str | None = None
    rate_class: str = "default"
    openapi: bool = True
    source: str = ""

    def matches(self, path: str) -> bool:
        if self.prefix.endswith("/"):
            return path.startswith(self.prefix)
        return path == self.prefix or path.startswith(self.prefix + "/")


class PolicyTable:
    """Route prefixes per service, longest first."""

    def __init__(self, routes: Iterable[RoutePolicy]) -> None:
        by_service: dict[str, list[RoutePolicy]] = {}
        seen: set[str] = set()
        for route in routes:
            if route.prefix in seen:
                raise PolicyError(f"prefix {route.prefix} is declared twice")
            seen.add(route.prefix)
            by_service.setdefault(route.service, []).append(route)
        self._by_service = {
            name: tuple(sorted(entries, key=lambda r: len(r.prefix), reverse=True))
            for name, entries in by_service.items()
        }

    @property
    def routes(self) -> tuple[RoutePolicy, ...]:
        return tuple(r for entries in self._by_service.values() for r in entries)

    def services(self) -> frozenset[str]:
        return frozenset(self._by_service)

    def match(self, service: str, path: str) -> RoutePolicy | None:
        """The policy of ``path`` (the full gateway path, ``/v1/<service>/...``), or None."""
        for route in self._by_service.get(service, ()):
            if route.matches(path):
                return route
        return None


def _parse_route(raw: object, source: str, known_services: frozenset[str]) -> RoutePolicy:  # noqa: PLR0912 (one check per field)
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: every [[route]] must be a table")
    unknown = set(raw) - {"prefix", "audience", "methods", "min_acr", "rate_class", "openapi"}
    if unknown:
        raise PolicyError(f"{source}: unknown field(s) {sorted(unknown)}")
    prefix = raw.get("prefix")
    if not isinstance(prefix, str) or not prefix.startswith("/v1/"):
        raise PolicyError(f"{source}: prefix must be a string starting with /v1/<service>/")
    parts = prefix.split("/")
    if len(parts) < 3 or parts[2] not in known_services or any(p in (".", "..") for p in parts):
        raise PolicyError(f"{source}: prefix {prefix} names no known service")
    try:
        audience = Audience(str(raw.get("audience")))
    except ValueError as exc:
        raise PolicyError(f"{source}: {prefix}: audience must be one of {[a.value for a in Audience]}") from exc
    methods_raw = raw.get("methods")
    methods: frozenset[str] | None = None
    if methods_raw is not None:
        if not isinstance(methods_raw, list) or not all(isinstance(m, str) for m in methods_raw):
            raise PolicyError(f"{source}: {prefix}: methods must be a list of strings")
        methods = frozenset(m.upper() for m in methods_raw)
        if not methods <= HTTP_METHODS:
            raise PolicyError(f"{source}: {prefix}: unknown method(s) {sorted(methods - HTTP_METHODS)}")
        if "GET" in methods:
            methods |= {"HEAD"}
    min_acr = raw.get("min_acr")
    if min_acr is not None and min_acr not in ACR_LEVELS:
        raise PolicyError(f"{source}: {prefix}: min_acr must be one of {list(ACR_LEVELS)}")
    if min_acr is not None and audience is Audience.public:
        raise PolicyError(f"{source}: {prefix}: a public route cannot require an assurance level")
    rate_class = raw.get("rate_class", "default")
    if rate_class not in RATE_CLASSES:
        raise PolicyError(f"{source}: {prefix}: rate_class must be one of {sorted(RATE_CLASSES)}")
    openapi = raw.get("openapi", True)
    if not isinstance(openapi, bool):
        raise PolicyError(f"{source}: {prefix}: openapi must be true or false")
    return RoutePolicy(
        prefix=prefix,
        service=parts[2],
        audience=audience,
        methods=methods,
        min_acr=min_acr,
        rate_class=rate_class,
        openapi=openapi,
        source=source,
    )


def load_policy(directory: Path, known_services: Iterable[str]) -> PolicyTable:
    """Read every ``*.toml`` of ``directory``; a file may only declare prefixes of its own service."""
    services = frozenset(known_services)
    routes: list[RoutePolicy] = []
    for file in sorted(directory.glob("*.toml")):
        try:
            document = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{file.name}: {exc}") from exc
        entries = document.get("route", [])
        if not isinstance(entries, list):
            raise PolicyError(f"{file.name}: use [[route]] tables")
        for raw in entries:
            route = _parse_route(raw, file.name, services)
            if file.stem in services and route.service != file.stem:
                raise PolicyError(f"{file.name}: {route.prefix} belongs to another service's file")
            routes.append(route)
    return PolicyTable(routes)
