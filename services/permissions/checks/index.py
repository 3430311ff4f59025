"""The in-memory policy index and the decision procedure (pure, no I/O).

A check looks up the subject's own grants in a dict and walks them (a
subject holds a handful of roles), then looks the permission up in each
role's precomputed effective sets: its cost does not depend on how many
grants, subjects or rules exist in total.

Order of evaluation, first match wins:

1. unknown permission: deny;
2. closed subject: deny everything;
3. an explicit deny of a role the subject holds (e.g. ``system_admin``
   excludes ``funds:read``): deny, whatever other roles allow;
4. no live grant allows it (expired grants count as absent, compared with the
   wall clock at check time, so expiry is immediate): deny;
5. a high-risk permission while the subject is frozen or suspended: deny;
6. allow, naming the grant and the role that gave it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RoleView:
    name: str
    high_risk: bool
    #: This role and every role it inherits from, nearest first.
    lineage: tuple[str, ...]
    #: permission -> the role in the lineage that declares it.
    allows: Mapping[str, str]
    denies: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class GrantView:
    id: str
    role: str
    scope: str | None
    #: POSIX timestamp, or None for a grant without expiry.
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class CheckResult:
    allowed: bool
    reason: str
    grant_id: str | None = None
    role: str | None = None
    high_risk: bool = False


@dataclass(frozen=True, slots=True)
class Model:
    """Roles and the permission catalog: rarely changes, rebuilt whole."""

    permissions: Mapping[str, bool]  # name -> high-risk
    roles: Mapping[str, RoleView]

    @classmethod
    def build(
        cls,
        permissions: Mapping[str, bool],
        roles: Iterable[tuple[str, str | None, bool]],
        role_permissions: Iterable[tuple[str, str, str]],
    ) -> Model:
        """``roles``: (name, parent name, high-risk); ``role_permissions``: (role, permission, effect)."""
        parents: dict[str, str | None] = {}
        flags: dict[str, bool] = {}
        for name, parent, high in roles:
            parents[name] = parent
            flags[name] = high
        declared_allow: dict[str, set[str]] = {name: set() for name in parents}
        declared_deny: dict[str, set[str]] = {name: set() for name in parents}
        for role, permission, effect in role_permissions:
            (declared_deny if effect == "deny" else declared_allow)[role].add(permission)
        views: dict[str, RoleView] = {}
        for name in parents:
            lineage = _lineage(name, parents)
            allows: dict[str, str] = {}
            denies: dict[str, str] = {}
            # Farthest ancestor first, so the nearest declaration wins the attribution.
            for ancestor in reversed(lineage):
                allows.update(dict.fromkeys(declared_allow[ancestor], ancestor))
                denies.update(dict.fromkeys(declared_deny[ancestor], ancestor))
            views[name] = RoleView(
                name=name,
                # Flagged, or giving any high-risk permission (training follows the power, not the label).
                high_risk=any(flags[a] for a in lineage) or any(permissions.get(p, False) for p in allows),
                lineage=lineage,
                allows=allows,
                denies=denies,
            )
        return cls(permissions=dict(permissions), roles=views)


def _lineage(name: str, parents: Mapping[str, str | None]) -> tuple[str, ...]:
    chain = [name]
    parent = parents.get(name)
    while parent is not None and parent not in chain:  # a cycle cannot loop forever
        chain.append(parent)
        parent = parents.get(parent)
    return tuple(chain)


@dataclass
class PolicyIndex:
    model: Model
    grants: dict[str, tuple[GrantView, ...]] = field(default_factory=dict)
    #: Subjects whose status is not ``active`` (frozen, closed).
    status: dict[str, str] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)
    #: grant id -> last time it allowed a check (flushed to the database in batches).
    used: dict[str, float] = field(default_factory=dict)

    def replace_subject(self, subject: str, grants: tuple[GrantView, ...], status: str | None, suspended: bool) -> None:
        if grants:
            self.grants[subject] = grants
        else:
            self.grants.pop(subject, None)
        if status and status != "active":
            self.status[subject] = status
        else:
            self.status.pop(subject, None)
        if suspended:
            self.suspended.add(subject)
        else:
            self.suspended.discard(subject)

    def holds_role(self, subject: str, role: str, now: float) -> bool:
        """True if a live grant gives ``role`` itself or a role that inherits it."""
        roles = self.model.roles
        for grant in self.grants.get(subject, ()):
            view = roles.get(grant.role)
            if view is not None and grant.live(now) and role in view.lineage:
                return True
        return False

    def check(self, subject: str, permission: str, scope: str | None, now: float) -> CheckResult:  # noqa: PLR0911
        high_risk = self.model.permissions.get(permission)
        if high_risk is None:
            return CheckResult(False, f"unknown permission {permission}")
        status = self.status.get(subject)
        if status == "closed":
            return CheckResult(False, "the subject's account is closed", high_risk=high_risk)
        grants = self.grants.get(subject, ())
        roles = self.model.roles
        live = [g for g in grants if g.live(now)]
        for grant in live:
            view = roles.get(grant.role)
            if view is not None and permission in view.denies:
                source = view.denies[permission]
                via = f" (declared by {source})" if source != view.name else ""
                return CheckResult(
                    False,
                    f"role {view.name}{via} excludes {permission}",
                    grant_id=grant.id,
                    role=view.name,
                    high_risk=high_risk,
                )
        chosen: GrantView | None = None
        source = ""
        out_of_scope: GrantView | None = None
        for grant in live:
            view = roles.get(grant.role)
            if view is None or permission not in view.allows:
                continue
            if grant.scope is None or grant.scope == scope:
                chosen, source = grant, view.allows[permission]
                break
            out_of_scope = grant
        if chosen is None:
            if out_of_scope is not None:
                return CheckResult(
                    False,
                    f"grant {out_of_scope.id} (role {out_of_scope.role}) gives {permission} "
                    f"only in scope {out_of_scope.scope}",
                    high_risk=high_risk,
                )
            expired = sum(1 for g in grants if not g.live(now))
            tail = f"; {expired} expired grant(s) no longer count" if expired else ""
            return CheckResult(False, f"no active grant gives {permission}{tail}", high_risk=high_risk)
        if high_risk and subject in self.suspended:
            return CheckResult(
                False,
                f"{permission} is high-risk and the subject's high-risk permissions are suspended pending review",
                high_risk=True,
            )
        if high_risk and status == "frozen":
            return CheckResult(False, f"{permission} is high-risk and the subject is frozen", high_risk=True)
        self.used[chosen.id] = now
        via = f", inherited from {source}" if source != chosen.role else ""
        where = f" in scope {chosen.scope}" if chosen.scope is not None else ""
        return CheckResult(
            True,
            f"allowed by grant {chosen.id} (role {chosen.role}{via}){where}",
            grant_id=chosen.id,
            role=chosen.role,
            high_risk=high_risk,
        )
