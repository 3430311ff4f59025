"""Which operations need an approval: the policy thresholds, for any input."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.permissions.approvals.service import requirement
from services.permissions.config import PermissionsSettings

SETTINGS = PermissionsSettings(environment="test")
THRESHOLD = 5_000_000


@given(amount=st.integers(min_value=-(10**12), max_value=10**12))
def test_transfers_need_approval_from_the_threshold_up(amount: int) -> None:
    required, reason = requirement(SETTINGS, "transfer.execute", {"amount_minor": amount})
    assert required == (amount >= THRESHOLD)
    assert str(amount) in reason


@given(
    value=st.one_of(
        st.none(), st.booleans(), st.floats(allow_nan=True), st.text(), st.lists(st.integers()), st.just({})
    )
)
def test_a_missing_or_odd_amount_fails_closed(value: Any) -> None:
    assert requirement(SETTINGS, "transfer.execute", {"amount_minor": value})[0] is True
    assert requirement(SETTINGS, "transfer.execute", {})[0] is True


def test_policies_from_the_environment_add_to_the_defaults(monkeypatch: Any) -> None:
    monkeypatch.setenv(
        "PERMISSIONS_APPROVAL_POLICIES",
        '{"payroll.release": {"required_approvals": 2, "approver_permission": "transfer:approve"},'
        ' "transfer.execute": {"approver_permission": "transfer:approve", "threshold_field": "amount_minor",'
        ' "threshold": 100}}',
    )
    settings = PermissionsSettings(environment="test")
    assert {"payroll.release", "role.grant", "subject.lift_suspension", "vault.key_delete"} <= set(
        settings.approval_policies
    )
    assert requirement(settings, "payroll.release", {}) == (True, "payroll.release always needs 2 approval(s)")
    assert requirement(settings, "transfer.execute", {"amount_minor": 100})[0] is True
