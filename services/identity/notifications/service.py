"""The notification channel: SMS and email to customers through an outbox.

A notification is a row written in the transaction that causes it (a code
sent, a lockout, a new device). A worker delivers pending rows to the
provider webhook (``notification_webhook_url``) with an ``Idempotency-Key``
and retries with backoff. With no webhook in development and test, rows are
marked ``sink`` and stay readable: the development sink that tests and
``make run`` read (``GET /internal/dev/notifications``). Recipients and bodies
are encrypted at rest like any personal data.
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

from services.identity.accounts.service import contact_of
from services.identity.crypto import Keyring
from services.identity.models import Account, Notification
from services.identity.runtime import Runtime

logger = logging.getLogger("identity.notifications")


@dataclass(frozen=True, slots=True)
class SinkMessage:
    id: uuid.UUID
    account_id: uuid.UUID | None
    channel: str
    template: str
    recipient: str
    body: str
    created_at: datetime


def _context(notification_id: uuid.UUID, field: str) -> str:
    return f"notification:{notification_id}:{field}"


async def send(
    session: AsyncSession,
    keyring: Keyring,
    *,
    account_id: uuid.UUID | None,
    channel: str,
    template: str,
    recipient: str,
    body: str,
) -> uuid.UUID:
    notification_id = uuid.uuid4()
    session.add(
        Notification(
            id=notification_id,
            account_id=account_id,
            channel=channel,
            template=template,
            recipient_enc=keyring.notification.encrypt_text(recipient, _context(notification_id, "recipient")),
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
    """Tell the account holder something on their preferred channel (SMS, else email); None if no contact."""
    for candidate in (channel,) if channel else ("sms", "email"):
        recipient = await contact_of(session, runtime.keyring, account, candidate)
        if recipient:
            return await send(
                session,
                runtime.keyring,
                account_id=account.id,
                channel=candidate,
                template=template,
                recipient=recipient,
                body=body,
            )
    return None


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
            recipient=keyring.notification.decrypt_text(row.recipient_enc, _context(row.id, "recipient")),
            body=keyring.notification.decrypt_text(row.body_enc, _context(row.id, "body")),
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
                await self._deliver(row, webhook)
            await session.commit()
        return len(rows)

    async def _deliver(self, row: Notification, webhook: str | None) -> None:
        now = datetime.now(UTC)
        if webhook is None:
            row.status, row.delivered_at = "sink", now
            return
        keyring = self.runtime.keyring
        payload = {
            "id": str(row.id),
            "channel": row.channel,
            "template": row.template,
            "recipient": keyring.notification.decrypt_text(row.recipient_enc, _context(row.id, "recipient")),
            "body": keyring.notification.decrypt_text(row.body_enc, _context(row.id, "body")),
        }
        row.attempts += 1
        error: str | None = None
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
