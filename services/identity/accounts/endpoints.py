"""Customer registration, contact verification, and the holder's own account."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, status

from kit.auth import Customer
from kit.db import DBSession
from kit.errors import SuiteError
from services.identity.accounts import service
from services.identity.accounts.schemas import (
    AccountView,
    CloseRequest,
    ContactChange,
    ContactVerify,
    RegistrationRequest,
    RegistrationResponse,
    ResendRequest,
    VerifyContactRequest,
    VerifyContactResponse,
)
from services.identity.deps import SignedIn, keep_failures, session_id, subject_id
from services.identity.errors import AlreadyRegistered, InvalidCode, TooManyAttempts
from services.identity.mfa import service as mfa
from services.identity.models import Account, CustomerProfile, audit_log
from services.identity.notifications.service import notify_verified_channels
from services.identity.notifications.service import send as send_notification
from services.identity.runtime import Rt
from services.identity.vault import Purpose

public = APIRouter(prefix="/public", tags=["registration"])
me = APIRouter(prefix="/me", tags=["account"])
customer = APIRouter(prefix="/customer", tags=["account"])


def account_view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        kind=account.kind,
        status=service.effective_status(account),
        risk_level=account.risk_level,
        failed_count=account.failed_count,
        lockout_count=account.lockout_count,
        locked_until=account.locked_until,
        must_change_password=account.must_change_password,
        created_at=account.created_at,
    )


@public.post("/register", status_code=status.HTTP_201_CREATED, response_model=RegistrationResponse)
async def register(body: RegistrationRequest, session: DBSession, runtime: Rt) -> RegistrationResponse:
    """Register a customer with real-name data.

    The mainland resident ID must pass its ISO 7064 MOD 11-2 check; the password
    must meet the policy. Name, ID, phone and email are stored in the vault
    (identity keeps the record id and keyed indexes of phone, email and ID).
    Details already registered get the same answer (an account id nobody holds): the holder of those
    details is told on their verified channels instead (no enumeration, no squatting an ID number).
    A verification code goes to the phone and one to the email; the phone must
    be verified (`POST /public/register/verify`) before the first login.
    A `cn_resident` number goes to the vault's `national_id` field, a
    `passport` or `other` document number (5-20 letters and digits) to its
    `id_document` field; the phone may be any E.164 number (an 11-digit
    mainland mobile may omit +86). `503 upstream_unavailable` when the vault
    cannot store the data: nothing is created.
    """
    data = service.NewCustomer(
        name=body.name,
        id_type=body.id_type,
        id_number=body.id_number,
        phone=body.phone,
        email=body.email,
        password=body.password,
    )
    try:
        account = await service.register_customer(session, runtime, data)
    except AlreadyRegistered:
        return await _registration_collided(session, runtime, data)
    # The vault holds the record from here on: if the rest fails (up to and including the commit, done
    # here rather than by the request's dependency for that reason) the subject is shredded again.
    account_id = account.id  # read now: a rollback expires the ORM objects
    try:
        sent = []
        for channel in ("sms", "email"):
            await mfa.send_code(session, runtime, account, purpose=f"verify:{channel}", channel=channel)
            sent.append(channel)
        await audit_log.append(
            session,
            actor=str(account.id),
            actor_kind="customer",
            action="account.registered",
            target=str(account.id),
            detail={"id_type": body.id_type},
        )
        await session.commit()
    except BaseException:
        await session.rollback()
        await service.forget_personal_data(runtime, account_id)
        raise
    return RegistrationResponse(account_id=account_id, verification_sent=sent)


async def _registration_collided(session: DBSession, runtime: Rt, data: service.NewCustomer) -> RegistrationResponse:
    """A registration with a phone, e-mail or ID number that is already registered (issue 13 item 12).

    The answer is the one a new registration gets (an account id nobody holds, codes "sent"): it says
    nothing about whether the details exist, and nobody squats someone's ID number. The registration
    continues on the verified channels of the account(s) that hold the details: their holders are told
    that someone tried, and how to get in if it was them.
    """
    for holder in await service.existing_holders(session, runtime, data):
        await notify_verified_channels(
            session,
            runtime,
            holder,
            template="alert.registration_attempt",
            body=(
                "Someone tried to register with the details of your Bank Suite account. If it was you, sign in "
                "or reset your password. If not, you need do nothing; contact the bank if it happens again."
            ),
        )
        await audit_log.append(
            session,
            actor="anonymous",
            actor_kind="anonymous",
            action="account.registration_collided",
            target=str(holder.id),
            detail={},
        )
    return RegistrationResponse(account_id=uuid.uuid4(), verification_sent=["sms", "email"])


@public.post("/register/verify", response_model=VerifyContactResponse)
async def verify_contact(body: VerifyContactRequest, session: DBSession, runtime: Rt) -> VerifyContactResponse:
    """Confirm a phone number or email address with the code sent to it (5 attempts per code)."""
    profile = await session.get(CustomerProfile, body.account_id)
    if profile is None:
        raise InvalidCode()
    async with keep_failures(session):
        await mfa.verify_code(session, runtime, body.account_id, f"verify:{body.channel}", body.code)
    now = datetime.now(UTC)
    if body.channel == "sms":
        profile.phone_verified_at = now
    else:
        profile.email_verified_at = now
    await audit_log.append(
        session,
        actor=str(body.account_id),
        actor_kind="customer",
        action="account.contact_verified",
        target=str(body.account_id),
        detail={"channel": body.channel},
    )
    return VerifyContactResponse(channel=body.channel, verified=True)


@public.post("/register/resend", status_code=status.HTTP_202_ACCEPTED, response_model=VerifyContactResponse)
async def resend_verification(body: ResendRequest, session: DBSession, runtime: Rt) -> VerifyContactResponse:
    """Send a new verification code to a contact not verified yet (the previous code stops working).
    Always 202: says nothing about whether the account exists."""
    profile = await session.get(CustomerProfile, body.account_id)
    verified_at = (
        None if profile is None else (profile.phone_verified_at if body.channel == "sms" else profile.email_verified_at)
    )
    if profile is not None and verified_at is None:
        account = await service.get_account(session, body.account_id)
        if account.status == "active":
            with contextlib.suppress(TooManyAttempts):  # the daily cap: the answer stays the same
                await mfa.send_code(session, runtime, account, purpose=f"verify:{body.channel}", channel=body.channel)
    return VerifyContactResponse(channel=body.channel, verified=False)


@me.get("/account", response_model=AccountView)
async def my_account(principal: SignedIn, session: DBSession) -> AccountView:
    """The signed-in person's account state (no personal data)."""
    return account_view(await service.get_account(session, subject_id(principal)))


@customer.post("/account/close", response_model=AccountView)
async def close_my_account(
    body: CloseRequest, principal: Customer, signed_in: SignedIn, session: DBSession
) -> AccountView:
    """Close the customer's own account: sessions and credentials revoked, personal data destroyed.

    Needs a step-up for the action `account.close` (`POST /me/step-up`).
    """
    account = await service.get_account(session, subject_id(principal), for_update=True)
    await mfa.consume_step_up(session, account.id, session_id(signed_in), "account.close")
    await service.close(session, account, actor=str(account.id), actor_kind="customer", reason=body.reason)
    return account_view(account)


@customer.post("/contacts", response_model=VerifyContactResponse)
async def change_contact(
    body: ContactChange, principal: Customer, signed_in: SignedIn, session: DBSession, runtime: Rt
) -> VerifyContactResponse:
    """Change the phone or email: needs a step-up for `contact.change`. The old contact is told, the new one
    gets a code and counts as unverified until `POST /customer/contacts/verify` (an unverified phone blocks
    the next login)."""
    account = await service.get_account(session, subject_id(principal), for_update=True)
    await mfa.consume_step_up(session, account.id, session_id(signed_in), "contact.change")
    # The previous value disappears from the vault with the change: read it now, it travels with its alert.
    previous = await service.contacts_of(session, runtime, account, (body.channel,), Purpose.customer_notification)
    profile = await service.change_contact(session, runtime, account, body.channel, body.value)
    # Read before the try: a rollback expires the ORM objects.
    record_id, account_id, old = profile.vault_record_id, account.id, previous.get(body.channel)
    assert record_id is not None
    # The vault holds the new value from here on: if the rest fails (commit included) it gets the old one back.
    try:
        if old:
            await send_notification(
                session,
                runtime.keyring,
                account_id=account_id,
                channel=body.channel,
                template="alert.contact_changed",
                recipient=old,
                body=(
                    "The contact details of your Bank Suite account were changed. "
                    "If this was not you, contact the bank."
                ),
            )
        await mfa.send_code(session, runtime, account, purpose=f"verify:{body.channel}", channel=body.channel)
        await audit_log.append(
            session,
            actor=principal.subject,
            actor_kind="customer",
            action="account.contact_changed",
            target=principal.subject,
            detail={"channel": body.channel},
        )
        await session.commit()
    except BaseException:
        await session.rollback()
        if old:
            with contextlib.suppress(SuiteError):
                await runtime.vault.update_fields(record_id, {service.contact_field(body.channel): old})
        raise
    return VerifyContactResponse(channel=body.channel, verified=False)


@customer.post("/contacts/verify", response_model=VerifyContactResponse)
async def verify_changed_contact(
    body: ContactVerify, principal: Customer, _: SignedIn, session: DBSession, runtime: Rt
) -> VerifyContactResponse:
    """Confirm a changed phone or email with the code sent to it."""
    return await verify_contact(
        VerifyContactRequest(account_id=subject_id(principal), channel=body.channel, code=body.code), session, runtime
    )
