"""The decision procedure on its own: inheritance, explicit denies, expiry, scope, status."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from services.permissions.checks.index import GrantView, Model, PolicyIndex

PERMISSIONS = {"doc:read": False, "doc:modify": False, "funds:read": True, "log:read": False, "key:delete": True}
ROLES = [
    ("restricted", None, False),
    ("user", "restricted", False),
    ("manager", "user", False),
    ("admin", "manager", True),
    ("sysadmin", "user", True),
    ("teller", "user", False),
]
LINKS = [
    ("restricted", "doc:read", "allow"),
    ("user", "doc:modify", "allow"),
    ("admin", "key:delete", "allow"),
    ("teller", "funds:read", "allow"),
    ("sysadmin", "log:read", "allow"),
    ("sysadmin", "funds:read", "deny"),
]
MODEL = Model.build(PERMISSIONS, ROLES, LINKS)
NOW = time.time()


def index_with(*grants: tuple[str, GrantView]) -> PolicyIndex:
    index = PolicyIndex(model=MODEL)
    for subject, grant in grants:
        index.grants[subject] = (*index.grants.get(subject, ()), grant)
    return index


def g(gid: str, role: str, scope: str | None = None, expires_at: float | None = None) -> GrantView:
    return GrantView(gid, role, scope, expires_at)


def test_inherited_permission_names_grant_and_source_role() -> None:
    index = index_with(("s", g("g1", "admin")))
    result = index.check("s", "doc:read", None, NOW)
    assert result.allowed
    assert result.grant_id == "g1"
    assert result.role == "admin"
    assert "inherited from restricted" in result.reason


def test_lineage_is_nearest_first() -> None:
    assert MODEL.roles["admin"].lineage == ("admin", "manager", "user", "restricted")
    assert MODEL.roles["admin"].high_risk
    assert MODEL.roles["manager"].high_risk is False


def test_explicit_deny_beats_an_allow_from_another_role() -> None:
    index = index_with(("s", g("t", "teller")), ("s", g("a", "sysadmin")))
    result = index.check("s", "funds:read", None, NOW)
    assert not result.allowed
    assert "sysadmin" in result.reason
    assert "excludes funds:read" in result.reason
    assert index.check("s", "log:read", None, NOW).allowed


def test_expired_grant_stops_at_its_expiry_instant() -> None:
    index = index_with(("s", g("g1", "teller", expires_at=NOW + 10)))
    assert index.check("s", "funds:read", None, NOW + 9.999).allowed
    late = index.check("s", "funds:read", None, NOW + 10)
    assert not late.allowed
    assert "1 expired grant(s)" in late.reason


def test_scoped_grant_only_in_its_scope() -> None:
    index = index_with(("s", g("g1", "teller", scope="branch:1")))
    assert index.check("s", "funds:read", "branch:1", NOW).allowed
    other = index.check("s", "funds:read", "branch:2", NOW)
    assert not other.allowed
    assert "only in scope branch:1" in other.reason
    assert not index.check("s", "funds:read", None, NOW).allowed


def test_unscoped_grant_covers_every_scope() -> None:
    index = index_with(("s", g("g1", "teller")))
    assert index.check("s", "funds:read", "branch:7", NOW).allowed


def test_frozen_and_suspended_lose_high_risk_only() -> None:
    index = index_with(("s", g("g1", "teller")))
    index.status["s"] = "frozen"
    frozen = index.check("s", "funds:read", None, NOW)
    assert not frozen.allowed
    assert "frozen" in frozen.reason
    assert index.check("s", "doc:read", None, NOW).allowed
    index.status.pop("s")
    index.suspended.add("s")
    suspended = index.check("s", "funds:read", None, NOW)
    assert not suspended.allowed
    assert "suspended" in suspended.reason
    assert index.check("s", "doc:modify", None, NOW).allowed


def test_closed_subject_is_denied_everything() -> None:
    index = index_with(("s", g("g1", "admin")))
    index.status["s"] = "closed"
    assert not index.check("s", "doc:read", None, NOW).allowed


def test_unknown_permission_and_unknown_subject() -> None:
    index = index_with(("s", g("g1", "admin")))
    assert index.check("s", "nothing:here", None, NOW).reason == "unknown permission nothing:here"
    assert index.check("nobody", "doc:read", None, NOW).reason == "no active grant gives doc:read"


def test_allowed_checks_record_grant_use() -> None:
    index = index_with(("s", g("g1", "teller")))
    index.check("s", "funds:read", None, NOW)
    assert index.used == {"g1": NOW}


def test_inheritance_cycle_does_not_loop() -> None:
    model = Model.build({"a:b": False}, [("x", "y", False), ("y", "x", False)], [("y", "a:b", "allow")])
    assert model.roles["x"].lineage == ("x", "y")
    assert model.roles["x"].allows == {"a:b": "y"}


def reference(index: PolicyIndex, subject: str, permission: str, scope: str | None, now: float) -> bool:
    """The rules written as plainly as possible, to compare against."""
    if permission not in MODEL.permissions or index.status.get(subject) == "closed":
        return False
    live = [gr for gr in index.grants.get(subject, ()) if gr.expires_at is None or gr.expires_at > now]
    lineages = {gr.id: MODEL.roles[gr.role].lineage for gr in live}

    def declares(gr: GrantView, effect: str) -> bool:
        return any((role, permission, effect) in LINKS for role in lineages[gr.id])

    if any(declares(gr, "deny") for gr in live):
        return False
    if not any(declares(gr, "allow") and gr.scope in (None, scope) for gr in live):
        return False
    high = MODEL.permissions[permission]
    return not (high and (subject in index.suspended or index.status.get(subject) == "frozen"))


grant_strategy = st.tuples(
    st.sampled_from([r[0] for r in ROLES]),
    st.sampled_from([None, "b1", "b2"]),
    st.sampled_from([None, NOW - 5, NOW + 5]),
)


@settings(max_examples=300, deadline=None)
@given(
    grants=st.lists(grant_strategy, max_size=5),
    permission=st.sampled_from([*PERMISSIONS, "x:y"]),
    scope=st.sampled_from([None, "b1", "b2"]),
    status=st.sampled_from([None, "active", "frozen", "closed"]),
    suspended=st.booleans(),
)
def test_decisions_match_the_plain_rules(
    grants: list[tuple[str, str | None, float | None]],
    permission: str,
    scope: str | None,
    status: str | None,
    suspended: bool,
) -> None:
    index = index_with(*(("s", g(f"g{i}", role, sc, exp)) for i, (role, sc, exp) in enumerate(grants)))
    if status:
        index.status["s"] = status
    if suspended:
        index.suspended.add("s")
    result = index.check("s", permission, scope, NOW)
    assert result.allowed == reference(index, "s", permission, scope, NOW)
    if result.allowed:
        assert result.grant_id is not None
        assert result.grant_id in result.reason


def test_a_role_giving_a_high_risk_permission_is_high_risk() -> None:
    assert MODEL.roles["teller"].high_risk  # funds:read, not flagged
    assert not MODEL.roles["user"].high_risk
