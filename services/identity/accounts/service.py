"""Accounts: registration, staff creation, look-up, lifecycle transitions.

Personal data is encrypted field by field (the row id and field name are the
AES-GCM associated data) and found again through keyed blind indexes; it is
never logged and never put in audit entries.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts.validation import (
    normalise_email,
    normalise_national_id,
    normalise_phone,
)
from services.identity.crypto import Keyring
from services.identity.errors import (
    AccountNotFound,
    AlreadyRegistered,
    InvalidContact,
    InvalidNationalId,
    InvalidTransition,
    WeakPassword,
)
from services.identity.models import (
    Account,
    AccountKind,
    AccountStatus,
    CustomerProfile,
    PasswordHistory,
    Session,
    audit_log,
    outbox,
)
from services.identity.passwords.policy import policy_violations
from services.identity.runtime import Runtime

PERMISSIONS_STATUS_PATH = "/v1/permissions/internal/subjects/{subject}/status"


def pii_context(account_id: uuid.UUID, field: str) -> str:
    return f"customer_profile:{account_id}:{field}"


@dataclass(frozen=True, slots=True)
class NewCustomer:
    name: str
    id_type: str
    id_number: str
    phone: str
    email: str
    password: str


def effective_status(account: Account, now: datetime | None = None) -> str:
    """The lifecycle state as seen from outside: ``locked`` while a lock runs."""
    now = now or datetime.now(UTC)
    if account.status == AccountStatus.active and account.locked_until is not None and account.locked_until > now:
        return "locked"
    return account.status


async def register_customer(session: AsyncSession, runtime: Runtime, data: NewCustomer) -> Account:
    settings, keyring = runtime.settings, runtime.keyring
    national_id = normalise_national_id(data.id_type, data.id_number)
    if national_id is None:
        raise InvalidNationalId("the ID number does not pass its check")
    phone = normalise_phone(data.phone)
    email = normalise_email(data.email)
    if phone is None or email is None:
        raise InvalidContact("the phone number or email address is not valid")
    problems = policy_violations(settings, data.password, (data.name, phone, email, national_id))
    if problems:
        raise WeakPassword("the password needs " + ", ".join(problems), rules=problems)
    account_id = uuid.uuid4()
    password_hash = await runtime.passwords.hash(data.password)
    now = datetime.now(UTC)
    account = Account(
        id=account_id,
        kind=AccountKind.customer.value,
        status=AccountStatus.active.value,
        phone_index=keyring.index("phone", phone),
        email_index=keyring.index("email", email),
        national_id_index=keyring.index(f"id:{data.id_type}", national_id),
        password_hash=password_hash,
        password_changed_at=now,
        failed_count=0,
        lockout_count=0,
        risk_level="normal",
        restrictions={},
    )
    profile = CustomerProfile(
        account_id=account_id,
        name_enc=keyring.pii.encrypt_text(data.name.strip(), pii_context(account_id, "name")),
        id_type=data.id_type,
        national_id_enc=keyring.pii.encrypt_text(national_id, pii_context(account_id, "national_id")),
        phone_enc=keyring.pii.encrypt_text(phone, pii_context(account_id, "phone")),
        email_enc=keyring.pii.encrypt_text(email, pii_context(account_id, "email")),
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
            session.add(profile)
            session.add(PasswordHistory(account_id=account_id, password_hash=password_hash))
            await session.flush()
    except IntegrityError as exc:
        # Which field collided is not said: that would confirm someone's phone or ID is a customer.
        raise AlreadyRegistered("an account with these details exists") from exc
    return account


def generate_one_time_password(length: int = 16) -> str:
    """A random password meeting every character-class rule (for new staff and resets)."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.isupper() for c in candidate)
            and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate


async def create_staff(
    session: AsyncSession, runtime: Runtime, *, username: str, email: str | None, actor: str
) -> tuple[Account, str]:
    """A staff account with a one-time password it must change at first login."""
    username = username.strip().lower()
    password = generate_one_time_password()
    password_hash = await runtime.passwords.hash(password)
    normalised_email = normalise_email(email) if email else None
    account = Account(
        id=uuid.uuid4(),
        kind=AccountKind.staff.value,
        status=AccountStatus.active.value,
        username=username,
        email_index=runtime.keyring.index("email", normalised_email) if normalised_email else None,
        password_hash=password_hash,
        password_changed_at=datetime.now(UTC),
        must_change_password=True,
        failed_count=0,
        lockout_count=0,
        risk_level="normal",
        restrictions={},
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
            if normalised_email:
                session.add(
                    CustomerProfile(
                        account_id=account.id,
                        id_type="staff",
                        email_enc=runtime.keyring.pii.encrypt_text(normalised_email, pii_context(account.id, "email")),
                        email_verified_at=datetime.now(UTC),
                    )
                )
            session.add(PasswordHistory(account_id=account.id, password_hash=password_hash))
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyRegistered("that user name or email is taken") from exc
    await audit_log.append(
        session, actor=actor, action="account.staff_created", target=str(account.id), detail={"kind": "staff"}
    )
    return account, password


def identifier_index(keyring: Keyring, identifier: str) -> tuple[str, str]:
    """(column, blind index) of what someone typed to log in: email, phone or staff user name."""
    cleaned = identifier.strip()
    if "@" in cleaned:
        email = normalise_email(cleaned)
        return "email_index", keyring.index("email", email or cleaned.lower())
    phone = normalise_phone(cleaned)
    if phone is not None and any(c.isdigit() for c in cleaned) and not any(c.isalpha() for c in cleaned):
        return "phone_index", keyring.index("phone", phone)
    return "username", cleaned.lower()


async def find_for_login(session: AsyncSession, keyring: Keyring, identifier: str) -> Account | None:
    """The account for a login identifier, row-locked so concurrent attempts on it run one at a time."""
    column, value = identifier_index(keyring, identifier)
    columns = {"email_index": Account.email_index, "phone_index": Account.phone_index, "username": Account.username}
    account: Account | None = await session.scalar(select(Account).where(columns[column] == value).with_for_update())
    return account


async def get_account(session: AsyncSession, account_id: uuid.UUID, *, for_update: bool = False) -> Account:
    query = select(Account).where(Account.id == account_id)
    if for_update:
        query = query.with_for_update()
    account = await session.scalar(query)
    if account is None:
        raise AccountNotFound()
    return account


async def contact_of(session: AsyncSession, keyring: Keyring, account: Account, channel: str) -> str | None:
    """The decrypted phone (``sms``) or email (``email``) of an account, if it has one."""
    profile = await session.get(CustomerProfile, account.id)
    if profile is None:
        return None
    field = "phone" if channel == "sms" else "email"
    blob = profile.phone_enc if channel == "sms" else profile.email_enc
    return keyring.pii.decrypt_text(blob, pii_context(account.id, field)) if blob else None


async def revoke_sessions(
    session: AsyncSession, account_id: uuid.UUID, reason: str, *, except_session: uuid.UUID | None = None
) -> int:
    query = (
        update(Session)
        .where(Session.account_id == account_id, Session.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoke_reason=reason)
        .returning(Session.id)
    )
    if except_session is not None:
        query = query.where(Session.id != except_session)
    return len((await session.execute(query)).all())


async def _tell_permissions(session: AsyncSession, account: Account, status: str, reason: str) -> None:
    await outbox.enqueue(
        session,
        target="permissions",
        path=PERMISSIONS_STATUS_PATH.format(subject=account.id),
        payload={"status": status, "reason": reason},
    )


async def freeze(session: AsyncSession, account: Account, *, actor: str, actor_kind: str, reason: str) -> None:
    if account.status != AccountStatus.active:
        raise InvalidTransition(f"a {account.status} account cannot be frozen")
    account.status = AccountStatus.frozen.value
    revoked = await revoke_sessions(session, account.id, "account_frozen")
    await _tell_permissions(session, account, "frozen", reason)
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="account.frozen",
        target=str(account.id),
        detail={"reason": reason, "sessions_revoked": revoked},
    )


async def unfreeze(
    session: AsyncSession, account: Account, *, actor: str, reason: str, approval_id: str | None
) -> None:
    if account.status != AccountStatus.frozen:
        raise InvalidTransition(f"a {account.status} account cannot be unfrozen")
    account.status = AccountStatus.active.value
    account.failed_count = 0
    account.locked_until = None
    await _tell_permissions(session, account, "active", reason)
    await audit_log.append(
        session,
        actor=actor,
        action="account.unfrozen",
        target=str(account.id),
        detail={"reason": reason, "approval_id": approval_id},
    )


async def close(session: AsyncSession, account: Account, *, actor: str, actor_kind: str, reason: str) -> None:
    """Revoke sessions and credentials and destroy the personal data (indexes included)."""
    # Late: the factor code sends notifications, which read contacts from this module.
    from services.identity.mfa.service import delete_factors

    if account.status == AccountStatus.closed:
        raise InvalidTransition("the account is already closed")
    account.status = AccountStatus.closed.value
    account.password_hash = None
    account.phone_index = account.email_index = account.national_id_index = None
    profile = await session.get(CustomerProfile, account.id)
    if profile is not None:
        profile.name_enc = profile.national_id_enc = profile.phone_enc = profile.email_enc = None
    await session.execute(delete(PasswordHistory).where(PasswordHistory.account_id == account.id))
    await delete_factors(session, account.id)
    revoked = await revoke_sessions(session, account.id, "account_closed")
    await _tell_permissions(session, account, "closed", reason)
    await audit_log.append(
        session,
        actor=actor,
        actor_kind=actor_kind,
        action="account.closed",
        target=str(account.id),
        detail={"reason": reason, "sessions_revoked": revoked},
    )


async def unlock(session: AsyncSession, account: Account, *, actor: str, reason: str) -> None:
    account.failed_count = 0
    account.locked_until = None
    await audit_log.append(
        session, actor=actor, action="account.unlocked", target=str(account.id), detail={"reason": reason}
    )


async def change_contact(
    session: AsyncSession, runtime: Runtime, account: Account, channel: str, value: str
) -> CustomerProfile:
    """Replace the phone (``sms``) or email; the new one must be verified again (a code is sent to it)."""
    keyring = runtime.keyring
    normalised = normalise_phone(value) if channel == "sms" else normalise_email(value)
    if normalised is None:
        raise InvalidContact("the phone number or email address is not valid")
    profile = await session.get(CustomerProfile, account.id, with_for_update=True)
    if profile is None:
        raise AccountNotFound()
    kind, field = ("phone", "phone") if channel == "sms" else ("email", "email")
    index = keyring.index(kind, normalised)
    encrypted = keyring.pii.encrypt_text(normalised, pii_context(account.id, field))
    try:
        async with session.begin_nested():
            if channel == "sms":
                account.phone_index, profile.phone_enc, profile.phone_verified_at = index, encrypted, None
            else:
                account.email_index, profile.email_enc, profile.email_verified_at = index, encrypted, None
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyRegistered("that contact belongs to another account") from exc
    return profile
