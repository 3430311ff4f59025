"""Every service of the suite as a live server, with test tokens for each kind of caller.

Used by the authorisation matrix and the fuzzing run (tests/security/). Each
service runs on its own database clone and trusts a throw-away token issuer;
staff permission checks go to :class:`Entitlements` (``staff-with`` holds
every permission, anyone else none), so the matrix can tell "not allowed"
from "allowed" without seeding roles. Nothing else is stood in for.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from kit.auth import TokenVerifier
from kit.permissions import ApprovalRefused, Decision
from services.permissions.cli import bootstrap_admin
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import SERVICE_BUILDERS, suite_factories
from tests.support.tokens import TestIssuer

SERVICES = tuple(sorted(SERVICE_BUILDERS))
STAFF_WITH = str(uuid.uuid5(uuid.NAMESPACE_URL, "suite:staff-with"))
STAFF_WITHOUT = str(uuid.uuid5(uuid.NAMESPACE_URL, "suite:staff-without"))
CUSTOMER = str(uuid.uuid5(uuid.NAMESPACE_URL, "suite:customer-1"))
SECOND_CUSTOMER = str(uuid.uuid5(uuid.NAMESPACE_URL, "suite:customer-2"))
#: A service client no service lists and that holds no scope.
UNSCOPED_SERVICE = "unscoped-client"


@dataclass
class Entitlements:
    """Stands in for the permissions service's check API: only ``STAFF_WITH`` holds permissions."""

    allowed: set[str] = field(default_factory=lambda: {STAFF_WITH})

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        if subject in self.allowed:
            return Decision(True, f"granted {permission}", grant_id=str(uuid.uuid5(uuid.NAMESPACE_URL, subject)))
        return Decision(False, f"no grant of {permission}")

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        raise ApprovalRefused("no such approval", approval_code="approval_not_found")

    def forget(self, subject: str | None = None) -> None:
        return None


@dataclass
class Callers:
    issuer: TestIssuer

    def headers(self, caller: str) -> dict[str, str]:
        """Authorization headers of a named caller (``anonymous`` has none)."""
        mint = self.issuer.headers
        by_name: dict[str, dict[str, str]] = {
            "anonymous": {},
            "customer": mint(subject=CUSTOMER, kind="customer", acr="aal2"),
            "second_customer": mint(subject=SECOND_CUSTOMER, kind="customer", acr="aal2"),
            "staff_without": mint(subject=STAFF_WITHOUT, kind="staff", acr="aal2"),
            "staff_with": mint(subject=STAFF_WITH, kind="staff", acr="aal2"),
            "service_without_scope": mint(subject=UNSCOPED_SERVICE, kind="service", session_id=None),
        }
        return by_name[caller]


@dataclass
class RunningService:
    name: str
    app: FastAPI
    url: str


async def trust_test_issuer(app: FastAPI, issuer: TestIssuer) -> None:
    """Make a started app accept the test issuer's tokens besides identity's real ones.

    The services still call one another through the gateway with identity's real service tokens, so
    the verifier keeps identity's key set and gains the test key (its JWKS fetch returns both).
    """
    verifier: TokenVerifier = app.state.token_verifier
    fetch_real = verifier._fetch
    extra = issuer.jwks()["keys"]

    async def both() -> Mapping[str, Any]:
        real = await fetch_real()
        return {"keys": [*real.get("keys", ()), *extra]}

    verifier._fetch = both
    await verifier.refresh()


@contextlib.asynccontextmanager
async def running_services(
    test_databases: TestDatabases, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> AsyncIterator[tuple[dict[str, RunningService], Callers]]:
    """The gateway and every service as live servers (one database), all trusting one test issuer too."""
    issuer = TestIssuer()
    url = await test_databases.clone("security_suite")
    async with live_suite(suite_factories(url, overrides=overrides)) as suite:
        running: dict[str, RunningService] = {}
        for name in SERVICES:
            server = suite.servers[name]
            assert server.server is not None
            app = server.server.config.app
            assert isinstance(app, FastAPI)
            await trust_test_issuer(app, issuer)
            if name == "permissions":  # permissions checks its own policy store: make staff-with its admin
                async with app.state.database.sessionmaker() as session:
                    await bootstrap_admin(session, STAFF_WITH)
                    await session.commit()
                app.state.policy_store.mark_stale()
            else:
                app.state.permission_client = Entitlements()
            running[name] = RunningService(name, app, server.url)
        yield running, Callers(issuer)
