"""Staff operations (each checked with the permissions service) and service-to-service calls."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy import select

from kit.auth import Principal, RequireAcr, ServiceCaller
from kit.db import DBSession
from kit.errors import NotFound, SuiteError
from kit.outbox import IdempotencyKey
from kit.permissions import PermissionClient, RequirePermission
from services.identity.accounts import service as accounts
from services.identity.accounts.endpoints import account_view
from services.identity.accounts.schemas import AccountView
from services.identity.deps import (
    ActsOnAccounts,
    ConsumesStepUps,
    Maintains,
    Notifies,
    SetsRiskLevel,
    SignedIn,
    session_id,
)
from services.identity.errors import InvalidTransition, OwnAccount
from services.identity.login.retention import (
    login_log_archive,
    purge_expired_challenges,
    purge_login_log,
    purge_notifications,
)
from services.identity.mfa.service import consume_step_up, send_code
from services.identity.models import AccountStatus, CustomerProfile, LoginAttempt, audit_log, inbox
from services.identity.notifications.service import (
    notify_account,
    notify_verified_channels,
    sink_messages,
)
from services.identity.notifications.service import send as send_notification
from services.identity.passwords.service import set_password
from services.identity.runtime import Rt
from services.identity.staff.schemas import (
    ContactChangePayload,
    FreezeRequest,
    LoginLogEntry,
    MaskedPersonalData,
    NotificationQueued,
    NotificationRequest,
    Purged,
    Reason,
    Restrictions,
    RiskLevelRequest,
    RiskLevelView,
    SinkMessageView,
    StaffAccountView,
    StaffClose,
    StaffContactChange,
    StaffContactChanged,
    StaffContactProposal,
    StaffCreate,
    StaffCreated,
    StepUpConsume,
    StepUpConsumed,
    UnfreezeRequest,
)
from services.identity.tokens.schemas import RevokedCount
from services.identity.vault import PersonalDataGone, Purpose

#: The fields of a customer's vault profile record besides the ID number (``accounts.document_field``).
CONTACT_AND_NAME_FIELDS = ("name", "phone", "email")

#: Staff act on customers' accounts only with a second factor behind their session.
staff = APIRouter(prefix="/staff", tags=["staff"], dependencies=[Depends(RequireAcr("aal2"))])
internal = APIRouter(prefix="/internal", tags=["internal"])

UNFREEZE_OPERATION = "account.unfreeze"
CLOSE_OPERATION = "account.close"
CHANGE_OPERATION = "account.change"


CanCreateStaff = Annotated[Principal, Depends(RequirePermission("staff_account:create"))]
CanReadAccount = Annotated[Principal, Depends(RequirePermission("account:read"))]
CanUnlock = Annotated[Principal, Depends(RequirePermission("account:modify"))]
CanReset = Annotated[Principal, Depends(RequirePermission("account:modify"))]
CanFreeze = Annotated[Principal, Depends(RequirePermission("account:freeze"))]
CanUnfreeze = Annotated[Principal, Depends(RequirePermission("account:unfreeze"))]
CanClose = Annotated[Principal, Depends(RequirePermission("account:close"))]
CanChangeContact = Annotated[Principal, Depends(RequirePermission("account:modify"))]
CanRestrict = Annotated[Principal, Depends(RequirePermission("account:modify"))]
CanReadLoginLog = Annotated[Principal, Depends(RequirePermission("login_log:read"))]


@staff.post("/accounts", response_model=StaffCreated, status_code=status.HTTP_201_CREATED)
async def create_staff(
    body: StaffCreate, actor: CanCreateStaff, _: SignedIn, session: DBSession, runtime: Rt
) -> StaffCreated:
    """Create a staff account with a one-time password (shown once, must be changed at first login)."""
    account, password = await accounts.create_staff(
        session, runtime, username=body.username, email=body.email, actor=actor.subject
    )
    assert account.username is not None
    return StaffCreated(id=account.id, username=account.username, one_time_password=password)


@staff.get("/accounts/{account_id}", response_model=StaffAccountView)
async def read_account(
    account_id: uuid.UUID, actor: CanReadAccount, _: SignedIn, session: DBSession, runtime: Rt
) -> StaffAccountView:
    """An account's lifecycle state and lockout counters, and a customer's real-name data **masked**.

    The masked values are read from the vault for the purpose `account_servicing`, with the staff
    member's id as reference (the vault's access log, and the customer's own view of it, say who
    looked). Unmasked values are the vault's business (`/v1/vault/staff/...`, with its own checks).
    `503 upstream_unavailable` when the vault cannot answer.
    """
    account = await accounts.get_account(session, account_id)
    view = StaffAccountView(**account_view(account).model_dump())
    profile = await session.get(CustomerProfile, account.id)
    if profile is None:
        return view
    view.id_type = profile.id_type
    if profile.vault_record_id is None or account.status == AccountStatus.closed:
        return view
    # Only the document field of the customer's ID type: the vault logs exactly what was read.
    fields = [*CONTACT_AND_NAME_FIELDS, accounts.document_field(profile.id_type)]
    try:
        values = await runtime.vault.read(
            profile.vault_record_id,
            fields,
            Purpose.account_servicing,
            unmasked=False,
            reference=f"staff:{actor.subject}",
        )
    except PersonalDataGone:
        return view
    view.personal_data = MaskedPersonalData(
        **{name: values.get(name) for name in fields},
        phone_verified=profile.phone_verified_at is not None,
        email_verified=profile.email_verified_at is not None,
    )
    return view


@staff.post("/accounts/{account_id}/unlock", response_model=AccountView)
async def unlock(account_id: uuid.UUID, body: Reason, actor: CanUnlock, _: SignedIn, session: DBSession) -> AccountView:
    """Lift a lockout and reset the failure count (after verifying the holder)."""
    account = await accounts.get_account(session, account_id, for_update=True)
    await accounts.unlock(session, account, actor=actor.subject, reason=body.reason)
    return account_view(account)


@staff.post("/accounts/{account_id}/password-reset", response_model=AccountView)
async def reset_password(
    account_id: uuid.UUID, body: Reason, actor: CanReset, _: SignedIn, session: DBSession, runtime: Rt
) -> AccountView:
    """Reset the password to a one-time one sent to the holder's verified phone (or email); every session
    is revoked and the new password must be changed at the next login. Staff never see it."""
    account = await accounts.get_account(session, account_id, for_update=True)
    if account.status == "closed":
        raise InvalidTransition("the account is closed")
    password = accounts.generate_one_time_password()
    await set_password(
        session,
        runtime,
        account,
        password,
        actor=actor.subject,
        actor_kind="staff",
        action="password.reset_by_staff",
        must_change=True,
    )
    await notify_account(
        session,
        runtime,
        account,
        template="password.temporary",
        body=f"Your temporary Bank Suite password is {password}. Change it when you sign in.",
    )
    return account_view(account)


@staff.post("/accounts/{account_id}/freeze", response_model=AccountView)
async def freeze(account_id: uuid.UUID, body: Reason, actor: CanFreeze, _: SignedIn, session: DBSession) -> AccountView:
    """Freeze: no login, every session revoked, permissions told (outbox)."""
    account = await accounts.get_account(session, account_id, for_update=True)
    await accounts.freeze(session, account, actor=actor.subject, actor_kind="staff", reason=body.reason)
    return account_view(account)


@staff.post("/accounts/{account_id}/unfreeze", response_model=AccountView)
async def unfreeze(
    account_id: uuid.UUID,
    *,
    body: UnfreezeRequest,
    request: Request,
    actor: CanUnfreeze,
    signed_in: SignedIn,
    session: DBSession,
) -> AccountView:
    """Unfreeze, executing a maker-checker approval (operation `account.unfreeze`,
    payload `{"account_id": "<id>"}`) approved in the permissions service by someone else. The acting
    staff member also needs a fresh step-up for `account.unfreeze` (`POST /me/step-up`)."""
    account = await accounts.get_account(session, account_id, for_update=True)
    if account.status != "frozen":
        raise InvalidTransition(f"a {account.status} account cannot be unfrozen")
    await consume_step_up(session, uuid.UUID(actor.subject), session_id(signed_in), "account.unfreeze")
    client: PermissionClient = request.app.state.permission_client
    await client.execute_approval(str(body.approval_id), UNFREEZE_OPERATION, {"account_id": str(account_id)})
    await accounts.unfreeze(
        session, account, actor=actor.subject, reason=body.reason, approval_id=str(body.approval_id)
    )
    return account_view(account)


@staff.post("/accounts/{account_id}/close", response_model=AccountView)
async def close(
    account_id: uuid.UUID, body: StaffClose, request: Request, actor: CanClose, _: SignedIn, session: DBSession
) -> AccountView:
    """Close any account (a customer's, a staff member's, an administrator's): sessions and credentials revoked,
    personal data destroyed, permissions told. Irreversible, so it executes a maker-checker approval
    (operation `account.close`, payload `{"account_id": "<id>"}`) approved by someone else in the permissions
    service; nobody closes their own account this way (`403 own_account`; customers use
    `POST /customer/account/close`)."""
    if actor.subject == str(account_id):
        raise OwnAccount("close your own account through your own account's route, not as staff")
    account = await accounts.get_account(session, account_id, for_update=True)
    if account.status == AccountStatus.closed:
        raise InvalidTransition("the account is already closed")
    client: PermissionClient = request.app.state.permission_client
    await client.execute_approval(str(body.approval_id), CLOSE_OPERATION, {"account_id": str(account_id)})
    await accounts.close(session, account, actor=actor.subject, actor_kind="staff", reason=body.reason)
    return account_view(account)


@staff.post("/accounts/{account_id}/contact-change/proposal", response_model=ContactChangePayload)
async def propose_contact_change(
    account_id: uuid.UUID,
    body: StaffContactProposal,
    actor: CanChangeContact,
    _: SignedIn,
    session: DBSession,
    runtime: Rt,
) -> ContactChangePayload:
    """Step 1 of a staff-initiated contact change: the payload of the `account.change` approval to request in
    the permissions service (the new value masked for the checker, bound by a keyed hash). Nothing changes."""
    if actor.subject == str(account_id):
        raise OwnAccount("staff do not change their own contacts this way")
    account = await accounts.get_account(session, account_id)
    if account.kind != "customer" or account.status == AccountStatus.closed:
        raise InvalidTransition("only an open customer account's contacts change this way")
    return ContactChangePayload(**accounts.contact_change_payload(runtime, account_id, body.channel, body.value))


@staff.post("/accounts/{account_id}/contact-change", response_model=StaffContactChanged)
async def change_contact(
    account_id: uuid.UUID,
    *,
    body: StaffContactChange,
    request: Request,
    actor: CanChangeContact,
    _: SignedIn,
    session: DBSession,
    runtime: Rt,
) -> StaffContactChanged:
    """Step 2: change a customer's phone or e-mail, executing the approved `account.change` approval whose
    payload step 1 gave (issue 13 item 2: one insider cannot redirect a customer's codes). The old contact
    is told, the customer's other verified channels too, and the new contact gets a verification code: it
    receives no login or reset code until the customer verifies it."""
    if actor.subject == str(account_id):
        raise OwnAccount("staff do not change their own contacts this way")
    account = await accounts.get_account(session, account_id, for_update=True)
    if account.kind != "customer" or account.status == AccountStatus.closed:
        raise InvalidTransition("only an open customer account's contacts change this way")
    payload = accounts.contact_change_payload(runtime, account_id, body.channel, body.value)
    client: PermissionClient = request.app.state.permission_client
    await client.execute_approval(str(body.approval_id), CHANGE_OPERATION, payload)
    previous = await accounts.contacts_of(session, runtime, account, (body.channel,), Purpose.customer_notification)
    profile = await accounts.change_contact(session, runtime, account, body.channel, body.value)
    record_id, old = profile.vault_record_id, previous.get(body.channel)
    assert record_id is not None
    try:
        message = (
            "The contact details of your Bank Suite account were changed by the bank. "
            "If you did not ask for this, contact the bank now."
        )
        if old:
            await send_notification(
                session,
                runtime.keyring,
                account_id=account_id,
                channel=body.channel,
                template="alert.contact_changed",
                recipient=old,
                body=message,
            )
        await notify_verified_channels(
            session, runtime, account, template="alert.contact_changed", body=message, exclude=(body.channel,)
        )
        await send_code(session, runtime, account, purpose=f"verify:{body.channel}", channel=body.channel)
        await audit_log.append(
            session,
            actor=actor.subject,
            action="account.contact_changed_by_staff",
            target=str(account_id),
            detail={"channel": body.channel, "approval_id": str(body.approval_id), "reason": body.reason},
        )
        await session.commit()
    except BaseException:
        await session.rollback()
        if old:
            with contextlib.suppress(SuiteError):
                await runtime.vault.update_fields(record_id, {accounts.contact_field(body.channel): old})
        raise
    return StaffContactChanged(channel=body.channel, verified=False, old_told=old is not None)


@staff.put("/accounts/{account_id}/restrictions", response_model=Restrictions)
async def set_restrictions(
    account_id: uuid.UUID, body: Restrictions, actor: CanRestrict, _: SignedIn, session: DBSession
) -> Restrictions:
    """Login restrictions by risk level: allowed hours (UTC), regions, known devices only; a violation asks for
    a second factor or denies."""
    account = await accounts.get_account(session, account_id, for_update=True)
    account.risk_level = body.risk_level
    account.home_region = body.home_region
    account.restrictions = body.model_dump(exclude={"risk_level", "home_region"}, exclude_none=True)
    await audit_log.append(
        session,
        actor=actor.subject,
        action="account.restrictions_changed",
        target=str(account_id),
        detail={"risk_level": body.risk_level},
    )
    return body


@staff.get("/login-log", response_model=list[LoginLogEntry])
async def login_log(
    *,
    actor: CanReadLoginLog,
    _: SignedIn,
    session: DBSession,
    account_id: Annotated[uuid.UUID | None, Query()] = None,
    result: Annotated[str | None, Query(pattern="^(success|failure|challenge|denied)$")] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[LoginLogEntry]:
    """The login log, newest first: every attempt with time, IP, region, device, method, result, reason."""
    query = select(LoginAttempt).order_by(LoginAttempt.occurred_at.desc(), LoginAttempt.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(LoginAttempt.account_id == account_id)
    if result is not None:
        query = query.where(LoginAttempt.result == result)
    if since is not None:
        query = query.where(LoginAttempt.occurred_at >= since)
    if until is not None:
        query = query.where(LoginAttempt.occurred_at < until)
    rows = (await session.scalars(query)).all()
    await audit_log.append(
        session,
        actor=actor.subject,
        action="login_log.read",
        target=str(account_id) if account_id else None,
        detail={"rows": len(rows)},
    )
    return [
        LoginLogEntry(
            id=r.id,
            occurred_at=r.occurred_at,
            account_id=r.account_id,
            ip=r.ip,
            region=r.region,
            device_id=r.device_id,
            user_agent=r.user_agent,
            method=r.method,
            result=r.result,
            reason=r.reason,
            failed_count=r.failed_count,
            signals=list(r.signals),
            risk_decision=r.risk_decision,
        )
        for r in rows
    ]


@internal.post("/accounts/{account_id}/freeze", response_model=AccountView)
async def freeze_by_service(
    account_id: uuid.UUID, body: FreezeRequest, caller: ActsOnAccounts, key: IdempotencyKey, session: DBSession
) -> AccountView:
    """Freeze on behalf of risk or incidents (outbox delivery, deduplicated by Idempotency-Key)."""
    account = await accounts.get_account(session, account_id, for_update=True)
    if await inbox.first_delivery(session, key) and account.status == "active":
        await accounts.freeze(session, account, actor=caller.subject, actor_kind="service", reason=body.reason)
    return account_view(account)


@internal.post("/accounts/{account_id}/revoke-sessions", response_model=RevokedCount)
async def revoke_by_service(
    account_id: uuid.UUID, body: FreezeRequest, caller: ActsOnAccounts, key: IdempotencyKey, session: DBSession
) -> RevokedCount:
    """Revoke every session of an account (incident playbooks), deduplicated by Idempotency-Key."""
    await accounts.get_account(session, account_id)
    count = 0
    if await inbox.first_delivery(session, key):
        count = await accounts.revoke_sessions(session, account_id, "revoked_by_service")
        await audit_log.append(
            session,
            actor=caller.subject,
            actor_kind="service",
            action="session.revoked_all",
            target=str(account_id),
            detail={"reason": body.reason, "revoked": count},
        )
    return RevokedCount(revoked=count)


def _receiver_key(caller: Principal, route: str, key: str) -> str:
    """The inbox key of a delivery: per caller and route, so one service's keys never swallow another's."""
    scoped = f"{route}:{caller.subject}:{key}"
    return scoped if len(scoped) <= 200 else f"{route}:{hashlib.sha256(scoped.encode()).hexdigest()}"


@internal.post(
    "/accounts/{account_id}/notifications",
    response_model=NotificationQueued,
    status_code=status.HTTP_202_ACCEPTED,
)
async def notify_by_service(
    account_id: uuid.UUID,
    *,
    body: NotificationRequest,
    caller: Notifies,
    key: IdempotencyKey,
    session: DBSession,
    runtime: Rt,
) -> NotificationQueued:
    """Tell the holder of an account something (a blocked transaction, a freeze, an incident update) on
    each of their **verified** channels, through identity's notification outbox. Deduplicated by
    `Idempotency-Key` (per caller): a repeat queues nothing. 404 for an unknown account."""
    account = await accounts.get_account(session, account_id)
    if account.status == AccountStatus.closed or not await inbox.first_delivery(
        session, _receiver_key(caller, "notify", key)
    ):
        return NotificationQueued(queued=0, duplicate=account.status != AccountStatus.closed)
    queued = await notify_verified_channels(
        session, runtime, account, template=f"event.{body.event}", body=f"Bank Suite: {body.message}"
    )
    await audit_log.append(
        session,
        actor=caller.subject,
        actor_kind="service",
        action="account.notified",
        target=str(account_id),
        detail={"event": body.event, "queued": queued},
    )
    return NotificationQueued(queued=queued)


@internal.put("/accounts/{account_id}/risk-level", response_model=RiskLevelView)
async def set_risk_level(
    account_id: uuid.UUID, body: RiskLevelRequest, caller: SetsRiskLevel, session: DBSession
) -> RiskLevelView:
    """Risk's judgement of an account (low / medium / high), stored on the account: `high` restricts logins
    to known devices (and the home region when known), `medium` makes every login signal ask for a second
    factor; the login-score call sends it to risk. Idempotent (a PUT)."""
    account = await accounts.get_account(session, account_id, for_update=True)
    if account.risk_level != body.level:
        await audit_log.append(
            session,
            actor=caller.subject,
            actor_kind="service",
            action="account.risk_level_changed",
            target=str(account_id),
            detail={"from": account.risk_level, "to": body.level, "reason": body.reason},
        )
        account.risk_level = body.level
    return RiskLevelView(account_id=account.id, risk_level=account.risk_level)


@internal.post("/step-up/consume", response_model=StepUpConsumed)
async def consume(body: StepUpConsume, caller: ConsumesStepUps, session: DBSession) -> StepUpConsumed:
    """For a service guarding a sensitive action (e.g. `transfer.large`): use the holder's step-up for it, once.
    A `transfer.large` step-up covers one transfer: give the `payload_hash` the holder's step-up named
    (`400 payload_hash_required` without it; `403 step_up_required` for another transfer). Scope
    `identity:step_up`."""
    method = await consume_step_up(
        session, body.account_id, body.session_id, body.action, payload_hash=body.payload_hash
    )
    await audit_log.append(
        session,
        actor=caller.subject,
        actor_kind="service",
        action="mfa.step_up_consumed",
        target=str(body.account_id),
        detail={"for": body.action, "session": str(body.session_id)},
    )
    return StepUpConsumed(consumed=True, method=method)


@internal.post("/login-log/purge", response_model=Purged)
async def purge(caller: Maintains, session: DBSession, runtime: Rt) -> Purged:
    """Run the retention purge now: the login log, expired login challenges and finished notifications past
    their retention (it also runs daily). Scope `identity:maintenance`."""
    deleted = await purge_login_log(
        session,
        runtime.settings.login_log_retention_days,
        archive_dir=login_log_archive(runtime.settings.login_log_archive_dir),
    )
    challenges = await purge_expired_challenges(session)
    notifications = await purge_notifications(session, runtime.settings.notification_retention_days)
    await audit_log.append(
        session,
        actor=caller.subject,
        actor_kind="service",
        action="login_log.purged",
        target=None,
        detail={"deleted": deleted, "expired_challenges": challenges, "notifications": notifications},
    )
    return Purged(deleted=deleted)


@internal.get("/dev/notifications", response_model=list[SinkMessageView])
async def dev_sink(
    caller: ServiceCaller, session: DBSession, runtime: Rt, account_id: Annotated[uuid.UUID | None, Query()] = None
) -> list[SinkMessageView]:
    """The development notification sink (development and test environments only): what would have been sent."""
    if not runtime.settings.environment.allows_dev_secrets or runtime.settings.notification_webhook_url:
        raise NotFound()
    messages = await sink_messages(session, runtime.keyring, account_id)
    return [
        SinkMessageView(
            id=m.id,
            account_id=m.account_id,
            channel=m.channel,
            template=m.template,
            recipient=m.recipient,
            body=m.body,
            status=m.status,
            created_at=m.created_at,
        )
        for m in messages
    ]
