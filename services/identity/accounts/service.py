"""Accounts: registration, staff creation, look-up, lifecycle transitions.

Customers' personal data (name, national ID, phone, email) is a record in the
vault; identity keeps the record id and its own keyed blind indexes of the
login identifiers and the national ID, so login and uniqueness checks never
ask the vault. Values are read from the vault only when one is needed (a code
to send, a password policy check, a staff view), and are never logged nor put
in audit entries. Closing an account crypto-shreds the customer in the vault
through the outbox.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.http import UpstreamUnavailable
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
    Notification,
    PasswordHistory,
    Session,
    StaffContact,
    audit_log,
    outbox,
)
from services.identity.passwords.policy import policy_violations
from services.identity.runtime import Runtime
from services.identity.vault import PersonalDataRefused, Purpose, subject_path

PERMISSIONS_STATUS_PATH = "/v1/permissions/internal/subjects/{subject}/status"

#: The vault field types an identity-document number can be stored under.
DOCUMENT_FIELDS = ("national_id", "id_document")


def document_field(id_type: str) -> str:
    """The vault field of an ID number: the resident ID is ``national_id`` (checksummed there too);
    passports and every other document are ``id_document``."""
    return "national_id" if id_type == "cn_resident" else "id_document"


def staff_contact_context(account_id: uuid.UUID) -> str:
    return f"staff_contact:{account_id}:email"


def contact_field(channel: str) -> str:
    """The vault field of a channel: ``sms`` → ``phone``, ``email`` → ``email``."""
    return "phone" if channel == "sms" else "email"


def has_contact(account: Account, channel: str) -> bool:
    """Whether the account has a phone (``sms``) or email, from identity's own index (never the vault)."""
    return (account.phone_index if channel == "sms" else account.email_index) is not None


def as_contact(field: str, value: str) -> str:
    """A value read from the vault in identity's form (the vault keeps mainland mobiles without +86, any
    other number in E.164 as identity does)."""
    normalised = normalise_phone(value) if field == "phone" else normalise_email(value)
    return normalised or value


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
    """Create the account and store its personal data in the vault.

    Order: identity's rows are written (not committed) first, so a duplicate
    phone, email or national ID is refused by identity's unique indexes
    without touching the vault; the vault write comes last. If the vault
    cannot store the record the request fails (503) and its transaction rolls
    back: nothing exists. If anything fails after the vault stored it, the
    caller shreds the subject (``forget_personal_data``).
    """
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
    profile = CustomerProfile(account_id=account_id, id_type=data.id_type)
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
    shred_switch = await arm_registration_shred(runtime, account_id)
    try:
        stored = await runtime.vault.store_profile(
            account_id,
            {"name": data.name.strip(), document_field(data.id_type): national_id, "phone": phone, "email": email},
        )
    except UpstreamUnavailable:
        # A timeout may hide a record the vault did store: shred the (new, never reused) subject id.
        await forget_personal_data(runtime, account_id)
        raise
    except PersonalDataRefused as exc:
        if set(DOCUMENT_FIELDS) & set(exc.fields):
            raise InvalidNationalId("the ID number is not accepted") from exc
        if {"phone", "email"} & set(exc.fields):
            # identity's syntax and the vault's differ at the edges (e.g. a 7-digit E.164 number).
            raise InvalidContact("the phone number or email address is not accepted") from exc
        raise
    profile.vault_record_id = stored.id
    try:
        await session.flush()
        # Disarmed in the registration's own transaction: its commit is what makes the data wanted.
        await outbox.cancel(session, shred_switch)
    except BaseException:
        await forget_personal_data(runtime, account_id)
        raise
    return account


async def arm_registration_shred(runtime: Runtime, account_id: uuid.UUID) -> str:
    """Before personal data goes to the vault: a shred of the subject, committed now and due later.

    The registration's transaction takes it back when it commits. If the process dies between the
    vault write and that commit (so no error handler runs), the shred is delivered when due and the
    vault keeps nothing of a customer who does not exist. Returns the message's idempotency key.
    """
    due = datetime.now(UTC) + timedelta(seconds=runtime.settings.registration_shred_after_seconds)
    async with runtime.sessionmaker() as own:
        key = await outbox.enqueue(
            own,
            target="vault",
            method="DELETE",
            path=subject_path(account_id),
            idempotency_key=f"registration-shred:{account_id}",
            not_before=due,
        )
        await own.commit()
    return key


async def forget_personal_data(runtime: Runtime, account_id: uuid.UUID) -> None:
    """Undo a registration's vault write after identity's own write failed (best effort, logged if not)."""
    await runtime.vault.shred_now(account_id)


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
                    CustomerProfile(account_id=account.id, id_type="staff", email_verified_at=datetime.now(UTC))
                )
                session.add(
                    StaffContact(
                        account_id=account.id,
                        email_enc=runtime.keyring.staff_contact.encrypt_text(
                            normalised_email, staff_contact_context(account.id)
                        ),
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


async def contacts_of(
    session: AsyncSession, runtime: Runtime, account: Account, channels: tuple[str, ...], purpose: Purpose
) -> dict[str, str]:
    """The current phone (``sms``) and/or email of an account, by channel, for one purpose.

    A customer's come from the vault (unmasked, the read logged there with
    ``purpose``); a staff member's email from identity's ``staff_contact``.
    Only channels the account has are asked for; deciding which ones it has
    needs no call (``has_contact``).
    """
    wanted = [c for c in channels if has_contact(account, c)]
    if not wanted:
        return {}
    profile = await session.get(CustomerProfile, account.id)
    if profile is not None and profile.vault_record_id is not None:
        values = await runtime.vault.read(
            profile.vault_record_id, [contact_field(c) for c in wanted], purpose, unmasked=True
        )
        return {c: as_contact(contact_field(c), values[contact_field(c)]) for c in wanted if contact_field(c) in values}
    if "email" in wanted:
        staff = await session.get(StaffContact, account.id)
        if staff is not None:
            email = runtime.keyring.staff_contact.decrypt_text(staff.email_enc, staff_contact_context(account.id))
            return {"email": email}
    return {}


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
    """Revoke sessions and credentials and destroy the personal data (indexes included).

    A customer's vault record is crypto-shredded through the outbox, in this
    transaction: the close and the shredding commit together, and the
    delivery (an idempotent DELETE) is retried until the vault confirms it.
    """
    # Late: the factor code sends notifications, which read contacts from this module.
    from services.identity.mfa.service import delete_factors

    if account.status == AccountStatus.closed:
        raise InvalidTransition("the account is already closed")
    account.status = AccountStatus.closed.value
    account.password_hash = None
    account.phone_index = account.email_index = account.national_id_index = None
    profile = await session.get(CustomerProfile, account.id)
    if profile is not None and profile.vault_record_id is not None:
        await outbox.enqueue(session, target="vault", method="DELETE", path=subject_path(account.id))
    await session.execute(delete(StaffContact).where(StaffContact.account_id == account.id))
    await session.execute(delete(PasswordHistory).where(PasswordHistory.account_id == account.id))
    await delete_factors(session, account.id)
    # Notification rows hold old contacts and message bodies: they go with the account (issue 13 item 14).
    await session.execute(delete(Notification).where(Notification.account_id == account.id))
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
    """Replace the phone (``sms``) or email; the new one must be verified again (a code is sent to it).

    identity's index is changed first (a contact of another account is refused
    without touching the vault), then the vault record. The caller restores
    the previous value in the vault if its transaction fails afterwards.
    """
    keyring = runtime.keyring
    normalised = normalise_phone(value) if channel == "sms" else normalise_email(value)
    if normalised is None:
        raise InvalidContact("the phone number or email address is not valid")
    profile = await session.get(CustomerProfile, account.id, with_for_update=True)
    if profile is None or profile.vault_record_id is None:
        raise AccountNotFound()
    field = contact_field(channel)
    index = keyring.index(field, normalised)
    try:
        async with session.begin_nested():
            if channel == "sms":
                account.phone_index, profile.phone_verified_at = index, None
            else:
                account.email_index, profile.email_verified_at = index, None
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyRegistered("that contact belongs to another account") from exc
    try:
        await runtime.vault.update_fields(profile.vault_record_id, {field: normalised})
    except PersonalDataRefused as exc:
        raise InvalidContact("the phone number or email address is not accepted") from exc
    return profile


def mask_contact(channel: str, value: str) -> str:
    """A contact as staff may see it: ``139****9000``, ``c***@example.com``."""
    if channel == "sms":
        local = value.removeprefix("+86")  # mainland mobiles are shown as customers write them
        return local[:3] + "****" + local[-4:] if len(local) > 7 else "****"
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def contact_change_payload(runtime: Runtime, account_id: uuid.UUID, channel: str, value: str) -> dict[str, str]:
    """The payload of the ``account.change`` approval that lets staff change a customer's contact: bound to
    the exact new value by a keyed hash (identity's index key), shown to the checker masked."""
    normalised = normalise_phone(value) if channel == "sms" else normalise_email(value)
    if normalised is None:
        raise InvalidContact("the phone number or email address is not valid")
    return {
        "account_id": str(account_id),
        "change": "contact",
        "channel": channel,
        "value_masked": mask_contact(channel, normalised),
        "value_digest": runtime.keyring.index(f"contact-change:{account_id}:{channel}", normalised),
    }


async def existing_holders(session: AsyncSession, runtime: Runtime, data: NewCustomer) -> list[Account]:
    """The accounts already holding this registration's phone, e-mail or ID number (identity's indexes)."""
    keyring = runtime.keyring
    national_id = normalise_national_id(data.id_type, data.id_number)
    phone, email = normalise_phone(data.phone), normalise_email(data.email)
    conditions = []
    if phone is not None:
        conditions.append(Account.phone_index == keyring.index("phone", phone))
    if email is not None:
        conditions.append(Account.email_index == keyring.index("email", email))
    if national_id is not None:
        conditions.append(Account.national_id_index == keyring.index(f"id:{data.id_type}", national_id))
    if not conditions:
        return []
    return list((await session.scalars(select(Account).where(or_(*conditions)))).all())
