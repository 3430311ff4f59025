"""Password change and reset: policy, history, revocation of other sessions, notification."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts.service import contacts_of, revoke_sessions
from services.identity.errors import PasswordReused, WeakPassword
from services.identity.models import Account, PasswordHistory, audit_log
from services.identity.notifications.service import notify_account
from services.identity.passwords.policy import policy_violations
from services.identity.runtime import Runtime
from services.identity.vault import Purpose


async def _check_history(session: AsyncSession, runtime: Runtime, account: Account, password: str) -> None:
    keep = runtime.settings.password_history
    if keep == 0:
        return
    hashes = (
        await session.scalars(
            select(PasswordHistory.password_hash)
            .where(PasswordHistory.account_id == account.id)
            .order_by(PasswordHistory.created_at.desc())
            .limit(keep)
        )
    ).all()
    checks = await asyncio.gather(*(runtime.passwords.verify(h, password) for h in hashes))
    if any(checks):
        raise PasswordReused(f"choose a password not among your last {keep}")


async def set_password(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    password: str,
    *,
    actor: str,
    actor_kind: str,
    action: str,
    keep_session: uuid.UUID | None = None,
    must_change: bool = False,
) -> int:
    """Apply a new password after the policy and history checks; revokes the other sessions."""
    if not must_change:
        # A password must not contain the holder's phone or email: read from the vault for this check only.
        contacts = await contacts_of(session, runtime, account, ("sms", "email"), Purpose.authentication)
        inputs = [c for c in [account.username, *contacts.values()] if c]
        problems = policy_violations(runtime.settings, password, inputs)
        if problems:
            raise WeakPassword("the password needs " + ", ".join(problems), rules=problems)
        await _check_history(session, runtime, account, password)
    hashed = await runtime.passwords.hash(password)
    account.password_hash = hashed
    account.password_changed_at = datetime.now(UTC)
    account.must_change_password = must_change
    account.failed_count = 0
    account.locked_until = None
    session.add(PasswordHistory(account_id=account.id, password_hash=hashed))
    await session.flush()
    await _trim_history(session, runtime, account.id)
    revoked = await revoke_sessions(session, account.id, "password_changed", except_session=keep_session)
    await notify_account(
        session,
        runtime,
        account,
        template="alert.password_changed",
        body="The password of your Bank Suite account was changed. If this was not you, contact the bank now.",
    )
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action=action,
        target=str(account.id),
        detail={"sessions_revoked": revoked},
    )
    return revoked


async def _trim_history(session: AsyncSession, runtime: Runtime, account_id: uuid.UUID) -> None:
    keep = max(runtime.settings.password_history, 1)
    stale = (
        await session.scalars(
            select(PasswordHistory.id)
            .where(PasswordHistory.account_id == account_id)
            .order_by(PasswordHistory.created_at.desc())
            .offset(keep)
        )
    ).all()
    if stale:
        await session.execute(delete(PasswordHistory).where(PasswordHistory.id.in_(stale)))


def password_expired(runtime: Runtime, account: Account) -> bool:
    max_age = runtime.settings.password_max_age_days
    if max_age is None or account.password_changed_at is None:
        return False
    return account.password_changed_at + timedelta(days=max_age) < datetime.now(UTC)
