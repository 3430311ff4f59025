"""Tables of the vault schema."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from kit.audit import AuditLog
from kit.db import make_metadata
from kit.outbox import Inbox, Outbox

SCHEMA = "vault"


class Base(DeclarativeBase):
    metadata = make_metadata(SCHEMA)

audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)
