"""History import for small files (staff); large files go through `python -m services.risk.cli import-history`."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from kit.auth import Principal
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.risk.deps import Settings
from services.risk.errors import InvalidImport
from services.risk.history import service
from services.risk.history.schemas import PRESETS, ImportOptions, ImportOut
from services.risk.models import audit_log

staff = APIRouter(prefix="/staff/history", tags=["history"])


@staff.post("/imports", response_model=ImportOut, summary="Import labelled history (small CSV)")
async def import_history(  # noqa: PLR0917 (query parameters)
    content: Annotated[str, Body(media_type="text/csv", max_length=20_000_000)],
    session: DBSession,
    settings: Settings,
    principal: Annotated[Principal, Depends(RequirePermission("risk:modify"))],
    preset: Annotated[str | None, Query(description=f"one of: {', '.join(sorted(PRESETS))}")] = None,
    mapping: Annotated[str | None, Query(description='JSON {"ours": "theirs"} column mapping')] = None,
    amount_scale: Annotated[int, Query(ge=1, le=10_000)] = 100,
    label_delay_days: Annotated[float, Query(ge=0, le=365)] = 7.0,
) -> ImportOut:
    """The CSV of docs/risk.md (or another export with a mapping), at most RISK_HISTORY_API_MAX_ROWS rows,
    in one transaction. Rows already stored are counted, not duplicated."""
    columns: dict[str, str] = dict(PRESETS.get(preset or "", {}))
    if preset and preset not in PRESETS:
        raise InvalidImport(f"unknown preset {preset}")
    if mapping:
        try:
            extra = json.loads(mapping)
        except json.JSONDecodeError as exc:
            raise InvalidImport("mapping must be a JSON object") from exc
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise InvalidImport("mapping must be a JSON object of column names")
        columns.update(extra)
    options = ImportOptions(mapping=columns, amount_scale=amount_scale, label_delay_days=label_delay_days)
    lines = content.splitlines()
    if len(lines) - 1 > settings.history_api_max_rows:
        raise InvalidImport(f"at most {settings.history_api_max_rows} rows here; use the CLI for larger files")
    _, rows = service.rows_of(lines, options)
    result = await service.import_batches(session, rows, batch_size=settings.history_batch_size)
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind="staff",
        action="history.imported",
        target=None,
        detail=result.model_dump(),
    )
    return result
