"""Request-level helpers shared by the identity routers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import CurrentPrincipal, Principal, RequireScope, RevokedSession, ServiceCaller
from kit.db import DBSession
from kit.errors import SuiteError
from services.identity.login.signals import LoginContext
from services.identity.runtime import Rt, Runtime
from services.identity.tokens.service import session_is_active


@contextlib.asynccontextmanager
async def keep_failures(session: AsyncSession) -> AsyncIterator[None]:
    """Commit the bookkeeping of a refused attempt before the error propagates.

    Failure counters, locks and login-log rows must outlive the failed request
    (otherwise the request's rollback would erase them and brute force would
    never lock anything). Only code that writes nothing but that bookkeeping
    before failing runs inside this block.
    """
    try:
        yield
    except SuiteError:
        await session.commit()
        raise


def client_ip(request: Request, runtime: Runtime) -> str | None:
    if runtime.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            # The last hop is the one our gateway appended; earlier ones are client-supplied.
            return forwarded.split(",")[-1].strip()[:64] or None
    return request.client.host if request.client else None


def login_context(request: Request, runtime: Runtime, device_id: str | None) -> LoginContext:
    ip = client_ip(request, runtime)
    return LoginContext(
        ip=ip,
        place=runtime.geo.locate(ip),
        device_id=device_id,
        user_agent=(request.headers.get("user-agent") or "")[:400] or None,
    )


async def _active_session(principal: CurrentPrincipal, session: DBSession, runtime: Rt) -> Principal:
    """A person's token whose session identity still considers live (logout and revocation take effect at once)."""
    if not await session_is_active(session, principal.session_id):
        raise RevokedSession("the session of this token has ended")
    return principal


SignedIn = Annotated[Principal, Depends(_active_session)]


def subject_id(principal: Principal) -> uuid.UUID:
    return uuid.UUID(principal.subject)


def session_id(principal: Principal) -> uuid.UUID:
    assert principal.session_id is not None
    return uuid.UUID(principal.session_id)


def service_with_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A service token (client credentials) that carries ``scope`` (kit's ``RequireScope``)."""
    require = RequireScope(scope)

    async def dependency(caller: ServiceCaller) -> Principal:
        return await require(caller)

    return dependency


#: The callers of identity's internal routes, each with only the scope its route needs
#: (docs/contracts.md, "Scopes"; issue 13 item 9).
FollowsRevocations = Annotated[Principal, Depends(service_with_scope("identity:revocations"))]
ActsOnAccounts = Annotated[Principal, Depends(service_with_scope("identity:accounts"))]
Notifies = Annotated[Principal, Depends(service_with_scope("identity:notify"))]
SetsRiskLevel = Annotated[Principal, Depends(service_with_scope("identity:risk_level"))]
ConsumesStepUps = Annotated[Principal, Depends(service_with_scope("identity:step_up"))]
Maintains = Annotated[Principal, Depends(service_with_scope("identity:maintenance"))]
