"""Caller authentication shared by the gateway and every service.

identity signs short-lived JWTs (EdDSA/Ed25519 or ES256) and publishes its
keys at ``/v1/identity/.well-known/jwks.json`` (through the gateway). The
gateway verifies every token before routing; each service verifies it again
with this same code (defence in depth), so a client-sent identity header can
never stand in for a token.

Routers are authenticated by default (the app factory adds
:func:`authenticate`); endpoints then ask for the caller they need with the
typed dependencies at the bottom: ``CurrentPrincipal``, ``Customer``,
``StaffUser``, ``ServiceCaller``, ``RequireScope(...)``, ``RequireAcr(...)``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import jwt
from fastapi import Depends, Request
from jwt import PyJWK

from kit.clock import SYSTEM_CLOCK, Clock
from kit.errors import Forbidden, NotAuthenticated

if TYPE_CHECKING:
    from kit.http import ServiceClient
    from kit.settings import ServiceSettings

#: Asymmetric algorithms only: ``none`` and every HMAC algorithm are refused,
#: which also rules out the "HS256 signed with the public key" confusion.
ALLOWED_ALGORITHMS = ("EdDSA", "ES256")
_KEY_TYPES = {"EdDSA": "OKP", "ES256": "EC"}


class SubjectKind(enum.StrEnum):
    customer = "customer"
    staff = "staff"
    service = "service"


#: Assurance levels, lowest first: password only, a second factor, a
#: phishing-resistant factor (WebAuthn).
ACR_LEVELS = ("aal1", "aal2", "aal3")


def acr_at_least(acr: str, minimum: str) -> bool:
    try:
        return ACR_LEVELS.index(acr) >= ACR_LEVELS.index(minimum)
    except ValueError:
        return False


class InvalidToken(NotAuthenticated):
    code = "invalid_token"
    title = "Invalid access token"


class RevokedSession(NotAuthenticated):
    code = "session_revoked"
    title = "Session revoked"


class InsufficientAssurance(Forbidden):
    code = "step_up_required"
    title = "A stronger authentication is required"


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of a request."""

    subject: str
    kind: SubjectKind
    session_id: str | None
    amr: tuple[str, ...]
    acr: str
    scopes: frozenset[str]
    token_id: str | None
    issued_at: datetime
    expires_at: datetime
    claims: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        try:
            kind = SubjectKind(claims["kind"])
        except (KeyError, ValueError) as exc:
            raise InvalidToken("token has no valid subject kind") from exc
        scope = claims.get("scope", "")
        return cls(
            subject=str(claims["sub"]),
            kind=kind,
            session_id=claims.get("sid"),
            amr=tuple(claims.get("amr", ())),
            acr=str(claims.get("acr", "aal1")),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            token_id=claims.get("jti"),
            issued_at=datetime.fromtimestamp(int(claims["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            claims=dict(claims),
        )


JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]
RevocationCheck = Callable[[str], bool]


class TokenVerifier:
    """Verifies access tokens against the issuer's JWKS, cached by key id.

    An unknown ``kid`` triggers one refetch (concurrent callers wait for the
    same fetch) and refetches are spaced by ``refetch_interval`` so a flood of
    tokens with made-up key ids cannot turn into a flood of JWKS requests.
    While the JWKS cannot be fetched, the spacing doubles after each failure
    up to ``max_refetch_interval`` (backoff; reset by the next success).

    A token already verified is remembered by its exact string (up to
    ``verified_cache_size`` of them, oldest out first), so a client's next
    request skips the signature check. A remembered token is still refused
    once it expires (same leeway), once its key is no longer published, and
    whenever its session is revoked: only the signature work is saved.
    """

    def __init__(
        self,
        fetch_jwks: JwksFetcher,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 30,
        refetch_interval: float = 5.0,
        is_revoked: RevocationCheck | None = None,
        max_refetch_interval: float | None = None,
        verified_cache_size: int = 10_000,
    ) -> None:
        self._fetch = fetch_jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.refetch_interval = refetch_interval
        self.is_revoked = is_revoked
        self._keys: dict[str, PyJWK] = {}
        self._lock = asyncio.Lock()
        self._last_fetch = float("-inf")
        self.max_refetch_interval = max(max_refetch_interval or refetch_interval, refetch_interval)
        self._fetch_failures = 0
        self.verified_cache_size = verified_cache_size
        self._verified: dict[str, tuple[Principal, str]] = {}
        #: Decides when a remembered token has expired (tests move it instead of sleeping).
        self.clock: Clock = SYSTEM_CLOCK

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def knows_key(self, kid: str) -> bool:
        """Whether ``kid`` is among the currently published keys (a retired key drops out on refresh)."""
        return kid in self._keys

    async def refresh(self) -> None:
        """Fetch the JWKS now (a periodic refresh picks up rotations and retirements)."""
        async with self._lock:
            await self._load_from_issuer()

    async def _load_from_issuer(self) -> None:
        self._last_fetch = time.monotonic()
        try:
            jwks = await self._fetch()
        except Exception:
            self._fetch_failures += 1
            raise
        self._fetch_failures = 0
        self.load_jwks(jwks)

    def _current_refetch_interval(self) -> float:
        if self._fetch_failures == 0:
            return self.refetch_interval
        backoff: float = self.refetch_interval * 2.0 ** min(self._fetch_failures, 16)
        return min(backoff, self.max_refetch_interval)

    @classmethod
    def from_settings(cls, settings: ServiceSettings, client: ServiceClient) -> TokenVerifier:
        path = settings.jwks_path

        async def fetch() -> Mapping[str, Any]:
            response = await client.request("GET", path, anonymous=True)
            response.raise_for_status()
            data: Mapping[str, Any] = response.json()
            return data

        return cls(
            fetch,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    def load_jwks(self, jwks: Mapping[str, Any]) -> None:
        keys: dict[str, PyJWK] = {}
        for raw in jwks.get("keys", ()):
            alg = raw.get("alg")
            kid = raw.get("kid")
            if alg not in ALLOWED_ALGORITHMS or not kid or raw.get("kty") != _KEY_TYPES[alg]:
                continue  # never trust a key for an algorithm we do not allow
            try:
                keys[kid] = PyJWK(dict(raw))
            except jwt.PyJWKError:
                continue
        self._keys = keys

    async def _key_for(self, kid: str) -> PyJWK | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key  # another caller fetched it while we waited
            if time.monotonic() - self._last_fetch < self._current_refetch_interval():
                return None
            try:
                await self._load_from_issuer()
            except Exception as exc:  # JWKS unreachable: the token cannot be checked
                raise InvalidToken("signing keys are unavailable") from exc
            return self._keys.get(kid)

    async def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, kid = remembered
            if not self._expired(principal) and kid in self._keys:
                self._refuse_if_revoked(principal)
                return principal
            del self._verified[token]
        principal, kid = await self._verify_signed(token)
        self._refuse_if_revoked(principal)
        if self.verified_cache_size > 0:
            if len(self._verified) >= self.verified_cache_size:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (principal, kid)
        return principal

    def _refuse_if_revoked(self, principal: Principal) -> None:
        if principal.session_id and self.is_revoked is not None and self.is_revoked(principal.session_id):
            raise RevokedSession("the session of this token was revoked")

    async def _verify_signed(self, token: str) -> tuple[Principal, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise InvalidToken("malformed token") from exc
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken("token algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token names no key")
        key = await self._key_for(kid)
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        if key.algorithm_name != alg:
            raise InvalidToken("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("token rejected") from exc
        principal = Principal.from_claims(claims)
        if self._expired(principal):  # PyJWT read the system clock; an injected one may be later
            raise InvalidToken("token expired")
        return principal, kid

    def _expired(self, principal: Principal) -> bool:
        return self.clock.time() > principal.expires_at.timestamp() + self.leeway


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """Verify the bearer token once per request and remember the principal."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = bearer_token(request)
    if token is None:
        raise NotAuthenticated("a bearer access token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(token)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def _require_kind(*kinds: SubjectKind) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.kind not in kinds:
            raise Forbidden(f"this endpoint is for {' or '.join(k.value for k in kinds)} callers")
        return principal

    return dependency


Customer = Annotated[Principal, Depends(_require_kind(SubjectKind.customer))]
StaffUser = Annotated[Principal, Depends(_require_kind(SubjectKind.staff))]
ServiceCaller = Annotated[Principal, Depends(_require_kind(SubjectKind.service))]
StaffOrService = Annotated[Principal, Depends(_require_kind(SubjectKind.staff, SubjectKind.service))]


class RequireScope:
    """``Depends(RequireScope("risk:score"))``: a service token must carry the scope."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if self.scope not in principal.scopes:
            raise Forbidden(f"missing scope {self.scope}")
        return principal


class RequireAcr:
    """``Depends(RequireAcr("aal2"))``: the session must have passed a second factor."""

    def __init__(self, minimum: str) -> None:
        if minimum not in ACR_LEVELS:
            raise ValueError(f"unknown assurance level {minimum}")
        self.minimum = minimum

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if not acr_at_least(principal.acr, self.minimum):
            raise InsufficientAssurance(f"this action needs assurance {self.minimum}", required_acr=self.minimum)
        return principal
