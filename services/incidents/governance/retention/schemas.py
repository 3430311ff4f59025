"""Shapes of retention runs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class RetentionRunView(BaseModel):
    id: uuid.UUID
    dataset: str
    cutoff: datetime
    archived: int
    purged: int
    archive_path: str | None
    archive_sha256: str | None
    actor: str
    run_at: datetime
