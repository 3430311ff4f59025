"""Every step lands in the permissions audit chain, and the chain verifies."""

from __future__ import annotations

from kit.audit import signing_key_from_secret
from services.permissions.models import audit_log
from tests.permissions.conftest import Perms


async def test_the_chain_verifies_after_grants_approvals_and_refusals(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    await perms.request(subject, "teller")  # refused: already granted (audited as refused)
    key = signing_key_from_secret(perms.app.state.settings.audit_signing_key.get_secret_value())
    async with perms.sessionmaker() as session:
        await audit_log.checkpoint(session, key)
        await session.commit()
        report = await audit_log.verify(session, key.public_key())
    assert report.ok, report
    assert report.entries_checked >= 5
