"""Shared lists: service writes (scope `risk:lists`), staff reads, writes, import and export."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Response, status

from kit.auth import Principal, RequireAcr, RequireScope
from kit.db import DBSession
from kit.permissions import RequirePermission
from services.risk.lists import repository, service
from services.risk.lists.schemas import EntriesOut, EntryIn, EntryOut, ImportOut, ListName, RemoveIn

internal = APIRouter(prefix="/internal/lists", tags=["lists"])
staff = APIRouter(prefix="/staff/lists", tags=["lists"])

#: Staff list changes need a session that passed a second factor.
StepUp = Depends(RequireAcr("aal2"))
Format = Annotated[Literal["csv", "json"], Query(alias="format", description="csv or json")]


@internal.post(
    "/{list_name}/entries",
    response_model=EntryOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a list entry (service)",
    responses={200: {"model": EntryOut, "description": "The same value and verdict are already listed: that entry."}},
)
async def add_internal(
    list_name: ListName,
    body: EntryIn,
    session: DBSession,
    response: Response,
    caller: Annotated[Principal, Depends(RequireScope("risk:lists"))],
) -> EntryOut:
    """201 with the new entry; 200 with the active one when the same list/value/verdict is listed."""
    entry, created = await service.add(session, list_name, body, actor=caller.subject, actor_kind="service")
    if not created:
        response.status_code = status.HTTP_200_OK
    return EntryOut.of(entry)


@staff.post(
    "/{list_name}/entries",
    response_model=EntryOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add",
    dependencies=[StepUp],
    responses={200: {"model": EntryOut, "description": "The same value and verdict are already listed: that entry."}},
)
async def add_staff(
    list_name: ListName,
    body: EntryIn,
    session: DBSession,
    response: Response,
    principal: Annotated[Principal, Depends(RequirePermission("risk:modify"))],
) -> EntryOut:
    entry, created = await service.add(session, list_name, body, actor=principal.subject, actor_kind="staff")
    if not created:
        response.status_code = status.HTTP_200_OK
    return EntryOut.of(entry)


@staff.get("/{list_name}", response_model=EntriesOut, summary="Entries of a list")
async def list_entries(
    list_name: ListName,
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("risk:read"))],
    include_removed: bool = False,
) -> EntriesOut:
    """Who added what and when (and who removed it, with `include_removed`)."""
    rows = await repository.entries(session, list_name.value, include_removed=include_removed)
    return EntriesOut(entries=[EntryOut.of(r) for r in rows])


@staff.post(
    "/{list_name}/entries/{entry_id}/removal", response_model=EntryOut, summary="Remove an entry", dependencies=[StepUp]
)
async def remove_entry(
    list_name: ListName,
    entry_id: uuid.UUID,
    body: RemoveIn,
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("risk:modify"))],
) -> EntryOut:
    entry = await service.remove(session, list_name, entry_id, actor=principal.subject, reason=body.reason)
    return EntryOut.of(entry)


@staff.post(
    "/{list_name}/imports", response_model=ImportOut, summary="Import entries (CSV or JSON)", dependencies=[StepUp]
)
async def import_entries(
    list_name: ListName,
    fmt: Format,
    content: Annotated[str, Body(media_type="text/plain", max_length=5_000_000)],
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("risk:modify"))],
) -> ImportOut:
    """CSV with the header `value,verdict,reason[,reference,expires_at]`, or a JSON array of entries
    (or `{"entries": [...]}`, the export's shape). Entries already active are counted, not duplicated."""
    parsed = service.parse_import(content, fmt)
    added, existing = await service.import_entries(session, list_name, parsed, actor=principal.subject)
    return ImportOut(added=added, already_listed=existing)


@staff.get(
    "/{list_name}/export",
    summary="Export a list (CSV or JSON)",
    response_class=Response,
    responses={
        200: {
            "description": "The list's active entries in the asked format.",
            "content": {"application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def export_entries(
    list_name: ListName,
    fmt: Format,
    session: DBSession,
    principal: Annotated[Principal, Depends(RequirePermission("risk:read"))],
) -> Response:
    rows = await repository.entries(session, list_name.value, include_removed=False)
    media = "application/json" if fmt == "json" else "text/csv"
    return Response(service.export(rows, fmt), media_type=media)
