"""Transactional outbox (sender side) and inbox (receiver side).

A side effect on another service is written as an ``outbox_message`` row in
the same transaction as the change that causes it, so both commit or neither
does. :class:`OutboxWorker` then delivers pending rows through the gateway
with an ``Idempotency-Key``, retrying with exponential backoff and jitter; a
row is marked delivered only after a 2xx. Receivers record the key in their
``inbox_message`` table in the same transaction as the effect
(:meth:`Inbox.first_delivery`), so a redelivery is acknowledged but not
applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import Counter
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.context import current_request_id
from kit.http import ServiceClient, UpstreamUnavailable

logger = logging.getLogger("kit.outbox")
tracer = trace.get_tracer("kit.outbox")

OUTBOX_DELIVERIES = Counter(
    "outbox_deliveries_total", "Outbox delivery attempts by outcome.", ["service", "target", "outcome"]
)


class MessageStatus:
    pending = "pending"
    delivered = "delivered"
    dead = "dead"


class Outbox:
    """The outbox table of one service schema."""

    def __init__(self, metadata: MetaData) -> None:
        self.messages = Table(
            "outbox_message",
            metadata,
            Column("id", Uuid, primary_key=True),
            Column("idempotency_key", String(200), nullable=False, unique=True),
            Column("target", String(64), nullable=False),
            Column("method", String(10), nullable=False),
            Column("path", String(500), nullable=False),
            Column("payload", JSONB, nullable=True),
            Column("headers", JSONB, nullable=False),
            Column("status", String(16), nullable=False, index=True),
            Column("attempts", Integer, nullable=False, server_default="0"),
            Column("next_attempt_at", DateTime(timezone=True), nullable=False),
            Column("last_error", Text, nullable=True),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("delivered_at", DateTime(timezone=True), nullable=True),
        )

    async def enqueue(
        self,
        session: AsyncSession,
        *,
        target: str,
        path: str,
        payload: Any = None,
        method: str = "POST",
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
    ) -> str:
        """Record a side effect in the caller's transaction; returns its idempotency key.

        With ``not_before`` the message waits until then: a deferred effect that
        :meth:`cancel` can still take back (a dead man's switch).
        """
        key = idempotency_key or str(uuid.uuid4())
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the delivery joins the trace that caused it
        request_id = current_request_id()
        if request_id:
            carrier["x-request-id"] = request_id
        await session.execute(
            insert(self.messages).values(
                id=uuid.uuid4(),
                idempotency_key=key,
                target=target,
                method=method.upper(),
                path=path,
                payload=payload,
                headers=carrier,
                status=MessageStatus.pending,
                attempts=0,
                next_attempt_at=not_before or datetime.now(UTC),
            )
        )
        return key

    async def cancel(self, session: AsyncSession, idempotency_key: str) -> bool:
        """Take back a message not delivered yet, in the caller's transaction; False if none was pending."""
        cancelled = await session.execute(
            delete(self.messages)
            .where(self.messages.c.idempotency_key == idempotency_key)
            .where(self.messages.c.status == MessageStatus.pending)
            .returning(self.messages.c.id)
        )
        return cancelled.first() is not None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 12
    base_seconds: float = 0.5
    max_seconds: float = 300.0

    def delay(self, attempts: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not crypto)


class OutboxWorker:
    """Delivers pending outbox rows; several replicas can run it at once."""

    def __init__(
        self,
        outbox: Outbox,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: ServiceClient,
        *,
        service: str,
        policy: RetryPolicy | None = None,
        poll_seconds: float = 1.0,
        batch_size: int = 20,
    ) -> None:
        self.outbox = outbox
        self.sessionmaker = sessionmaker
        self.client = client
        self.service = service
        self.policy = policy or RetryPolicy()
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a delivery round now (e.g. right after a commit that enqueued)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                handled = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox round failed")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
                self._wake.clear()

    async def deliver_due(self) -> int:
        """One round: lock due rows (skipping rows another worker holds) and deliver them."""
        table = self.outbox.messages
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(table)
                    .where(table.c.status == MessageStatus.pending, table.c.next_attempt_at <= func.now())
                    .order_by(table.c.next_attempt_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await self._deliver(session, row)
            return len(rows)

    async def _deliver(self, session: AsyncSession, row: Any) -> None:
        table = self.outbox.messages
        headers: dict[str, str] = dict(row.headers or {})
        parent = propagate.extract(headers)
        token = otel_context.attach(parent)
        attempts = row.attempts + 1
        try:
            with tracer.start_as_current_span(f"outbox deliver {row.target}"):
                try:
                    response = await self.client.request(
                        row.method,
                        row.path,
                        json=row.payload,
                        headers={k: v for k, v in headers.items() if k == "x-request-id"},
                        idempotency_key=row.idempotency_key,
                        retries=0,
                    )
                    status, error = response.status_code, None if response.is_success else response.text[:500]
                except UpstreamUnavailable as exc:
                    status, error = None, str(exc)
        finally:
            otel_context.detach(token)

        now = datetime.now(UTC)
        if status is not None and 200 <= status < 300:
            values: dict[str, Any] = {
                "status": MessageStatus.delivered,
                "delivered_at": now,
                "last_error": None,
            }
            outcome = "delivered"
        elif status is not None and 400 <= status < 500 and status not in (408, 425, 429):
            # The receiver understood and refused: repeating will not help.
            values = {"status": MessageStatus.dead, "last_error": f"{status}: {error}"}
            outcome = "rejected"
            logger.error("outbox message %s to %s rejected with %s", row.idempotency_key, row.target, status)
        elif attempts >= self.policy.max_attempts:
            values = {"status": MessageStatus.dead, "last_error": f"{status}: {error}"}
            outcome = "exhausted"
            logger.error("outbox message %s to %s gave up after %d attempts", row.idempotency_key, row.target, attempts)
        else:
            values = {
                "next_attempt_at": now + timedelta(seconds=self.policy.delay(attempts)),
                "last_error": f"{status}: {error}",
            }
            outcome = "retry"
        OUTBOX_DELIVERIES.labels(self.service, row.target, outcome).inc()
        await session.execute(update(table).where(table.c.id == row.id).values(attempts=attempts, **values))


class Inbox:
    """Idempotency keys a receiver has already applied."""

    def __init__(self, metadata: MetaData) -> None:
        self.messages = Table(
            "inbox_message",
            metadata,
            Column("idempotency_key", String(200), primary_key=True),
            Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )

    async def first_delivery(self, session: AsyncSession, idempotency_key: str) -> bool:
        """True the first time a key is seen; call in the same transaction as the effect.

        A concurrent duplicate blocks on the key's unique index until the first
        commits, then sees it and returns False; if the first rolls back, the
        duplicate goes on to apply the effect. Either way it is applied once.
        """
        result = await session.execute(
            pg_insert(self.messages)
            .values(idempotency_key=idempotency_key)
            .on_conflict_do_nothing(index_elements=[self.messages.c.idempotency_key])
            .returning(self.messages.c.idempotency_key)
        )
        return result.first() is not None


IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=200)]
