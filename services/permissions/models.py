"""Tables of the permissions schema."""

from __future__ import annotations

from kit.audit import AuditLog
from kit.db import declarative_base
from kit.outbox import Inbox, Outbox

SCHEMA = "permissions"

Base = declarative_base(SCHEMA)
audit_log = AuditLog(Base.metadata)
outbox = Outbox(Base.metadata)
inbox = Inbox(Base.metadata)
