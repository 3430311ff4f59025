"""The notification channel: SMS and email to customers through an outbox.

A notification is a row written in the transaction that causes it (a code
sent, a lockout, a new device). The row holds no recipient: it names the
customer's vault record and field (``phone`` / ``email``), and the worker
reads the value from the vault (purpose ``customer_notification``, the
notification id as reference) at the moment it delivers the row to the
provider webhook (``notification_webhook_url``) with an ``Idempotency-Key``,
retrying with backoff (a vault outage is retried like a provider outage; a
shredded customer ends the row as ``dead``). Staff emails come from
``staff_contact``. The one recipient stored with a row is one that exists
nowhere else any more: the previous contact told about a change.

With no webhook in development and test, rows are resolved the same way and
marked ``sink``, keeping what the stand-in provider received: the
development sink that tests and ``make run`` read
(``GET /internal/dev/notifications``). Bodies (and those recipients) are
AES-GCM encrypted at rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.http import UpstreamUnavailable
from services.identity.accounts.service import as_contact, contact_field, has_contact, staff_contact_context
from services.identity.crypto import Keyring
from services.identity.models import Account, CustomerProfile, Notification, StaffContact
from services.identity.runtime import Runtime
from services.identity.vault import PersonalDataGone, Purpose

logger = logging.getLogger("identity.notifications")


@dataclass(frozen=True, slots=True)
class SinkMessage:
    id: uuid.UUID
    account_id: uuid.UUID | None
    channel: str
    template: str
    #: None until delivered (the recipient is read from the vault at delivery).
    recipient: str | None
    body: str
    status: str
    created_at: datetime


class RecipientUnavailable(Exception):
    """The row's recipient cannot be known, now or ever (shredded customer, contact removed)."""


def _context(notification_id: uuid.UUID, field: str) -> str:
    return f"notification:{notification_id}:{field}"


async def send(
    session: AsyncSession,
    keyring: Keyring,
    *,
    account_id: uuid.UUID | None,
    channel: str,
    template: str,
    body: str,
    vault_record_id: uuid.UUID | None = None,
    recipient: str | None = None,
) -> uuid.UUID:
    """Queue a message to the account's contact on ``channel`` (resolved at delivery), or to ``recipient``
    when the address exists nowhere else (it is then stored encrypted with the row)."""
    notification_id = uuid.uuid4()
    session.add(
        Notification(
            id=notification_id,
            account_id=account_id,
            channel=channel,
            template=template,
            vault_record_id=vault_record_id,
            recipient_field=contact_field(channel),
            recipient_enc=(
                keyring.notification.encrypt_text(recipient, _context(notification_id, "recipient"))
                if recipient is not None
                else None
            ),
            body_enc=keyring.notification.encrypt_text(body, _context(notification_id, "body")),
            status="pending",
            attempts=0,
            next_attempt_at=datetime.now(UTC),
        )
    )
    await session.flush()
    return notification_id


async def notify_account(
    session: AsyncSession, runtime: Runtime, account: Account, *, template: str, body: str, channel: str | None = None
) -> uuid.UUID | None:
    """Tell the account holder something on their preferred channel (SMS, else email); None if no contact.

    Which channels the account has is identity's own knowledge (its indexes): no vault call here. Without
    an explicit ``channel`` only a verified contact is used (alerts and temporary passwords never go to a
    contact someone put on the account without proving it); an explicit one is for verification codes.
    """
    profile = await session.get(CustomerProfile, account.id)
    candidates = (channel,) if channel else tuple(verified_channels(account, profile))
    for candidate in candidates:
        if has_contact(account, candidate):
            return await send(
                session,
                runtime.keyring,
                account_id=account.id,
                channel=candidate,
                template=template,
                body=body,
                vault_record_id=profile.vault_record_id if profile is not None else None,
            )
    return None


def verified_channels(account: Account, profile: CustomerProfile | None) -> list[str]:
    """The channels whose contact the holder proved they receive (a code sent there came back)."""
    if profile is None:
        return []
    verified = {"sms": profile.phone_verified_at, "email": profile.email_verified_at}
    return [c for c in ("sms", "email") if has_contact(account, c) and verified[c] is not None]


async def notify_verified_channels(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    *,
    template: str,
    body: str,
    exclude: tuple[str, ...] = (),
) -> int:
    """Tell the holder on every verified channel (but ``exclude``); returns how many messages were queued.

    Never an unverified contact: an attacker who put their own address on the account is not told
    what is meant for the holder.
    """
    profile = await session.get(CustomerProfile, account.id)
    channels = [c for c in verified_channels(account, profile) if c not in exclude]
    for channel in channels:
        await send(
            session,
            runtime.keyring,
            account_id=account.id,
            channel=channel,
            template=template,
            body=body,
            vault_record_id=profile.vault_record_id if profile is not None else None,
        )
    return len(channels)


async def sink_messages(session: AsyncSession, keyring: Keyring, account_id: uuid.UUID | None) -> list[SinkMessage]:
    query = select(Notification).order_by(Notification.created_at.desc()).limit(100)
    if account_id is not None:
        query = query.where(Notification.account_id == account_id)
    rows = (await session.scalars(query)).all()
    return [
        SinkMessage(
            id=row.id,
            account_id=row.account_id,
            channel=row.channel,
            template=row.template,
            recipient=(
                keyring.notification.decrypt_text(row.recipient_enc, _context(row.id, "recipient"))
                if row.recipient_enc is not None
                else None
            ),
            body=keyring.notification.decrypt_text(row.body_enc, _context(row.id, "body")),
            status=row.status,
            created_at=row.created_at,
        )
        for row in rows
    ]


class NotificationWorker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], runtime: Runtime) -> None:
        self.sessionmaker = sessionmaker
        self.runtime = runtime
        self.http = httpx.AsyncClient(timeout=runtime.settings.http_timeout_seconds)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def run(self) -> None:
        while True:
            try:
                handled = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("notification round failed")
                handled = 0
            if handled == 0:
                await asyncio.sleep(self.runtime.settings.notification_poll_seconds)

    async def deliver_due(self, batch: int = 20) -> int:
        settings = self.runtime.settings
        webhook = settings.notification_webhook_url
        if webhook is None and not settings.environment.allows_dev_secrets:
            return 0  # nowhere to deliver: rows wait until a webhook is configured
        async with self.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(Notification)
                    .where(Notification.status == "pending", Notification.next_attempt_at <= datetime.now(UTC))
                    .order_by(Notification.next_attempt_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self._deliver(session, row, webhook)
            await session.commit()
        return len(rows)

    async def recipient_of(self, session: AsyncSession, row: Notification) -> str:
        """Where the row goes, read now: the stored address, the customer's vault value, or a staff email.

        Raises :class:`RecipientUnavailable` when it can never be known, ``UpstreamUnavailable`` when the
        vault cannot answer now.
        """
        keyring = self.runtime.keyring
        if row.recipient_enc is not None:
            return keyring.notification.decrypt_text(row.recipient_enc, _context(row.id, "recipient"))
        field = row.recipient_field or contact_field(row.channel)
        if row.vault_record_id is not None:
            try:
                values = await self.runtime.vault.read(
                    row.vault_record_id,
                    [field],
                    Purpose.customer_notification,
                    unmasked=True,
                    reference=f"notification:{row.id}",
                )
            except PersonalDataGone as exc:
                raise RecipientUnavailable("the customer's personal data was destroyed") from exc
            if field not in values:
                raise RecipientUnavailable(f"the customer has no {field}")
            return as_contact(field, values[field])
        staff = await session.get(StaffContact, row.account_id) if row.account_id is not None else None
        if staff is None or field != "email":
            raise RecipientUnavailable(f"the account has no {field}")
        return keyring.staff_contact.decrypt_text(staff.email_enc, staff_contact_context(staff.account_id))

    async def _deliver(self, session: AsyncSession, row: Notification, webhook: str | None) -> None:
        now = datetime.now(UTC)
        keyring = self.runtime.keyring
        row.attempts += 1
        error: str | None = None
        try:
            recipient = await self.recipient_of(session, row)
        except RecipientUnavailable as exc:
            row.status, row.last_error = "dead", str(exc)
            logger.warning("notification %s cannot be delivered: %s", row.id, exc)
            return
        except UpstreamUnavailable:
            recipient, error = None, "vault unavailable"
        if recipient is not None and webhook is None:
            # The development sink keeps what the stand-in provider received.
            row.recipient_enc = keyring.notification.encrypt_text(recipient, _context(row.id, "recipient"))
            row.status, row.delivered_at, row.last_error = "sink", now, None
            return
        if recipient is not None and webhook is not None:
            payload = {
                "id": str(row.id),
                "channel": row.channel,
                "template": row.template,
                "recipient": recipient,
                "body": keyring.notification.decrypt_text(row.body_enc, _context(row.id, "body")),
            }
            with contextlib.suppress(httpx.HTTPError):
                response = await self.http.post(webhook, json=payload, headers={"Idempotency-Key": str(row.id)})
                if response.is_success:
                    row.status, row.delivered_at, row.last_error = "delivered", now, None
                    return
                error = f"provider answered {response.status_code}"
        row.last_error = error or "provider unreachable"
        if row.attempts >= self.runtime.settings.outbox_max_attempts:
            row.status = "dead"
            logger.error("notification %s gave up after %d attempts", row.id, row.attempts)
            return
        delay = min(300.0, 0.5 * 2 ** (row.attempts - 1))
        row.next_attempt_at = now + timedelta(seconds=random.uniform(delay / 2, delay))  # noqa: S311 (jitter)
