"""Records API: staff routes (permission-checked) and internal routes (services by client id).

Both audiences share the same operations; only the authorisation differs.
Every read names its purpose and fields and lands in the access log (the
service's audit chain) with the caller, including refused attempts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from kit.auth import Principal, RequireAcr, ServiceCaller, SubjectKind
from kit.db import DBSession
from kit.errors import SuiteError
from kit.permissions import RequirePermission, payload_hash
from services.vault.access import quota
from services.vault.access.policy import (
    PERM_READ,
    PERM_SHRED,
    PERM_WRITE,
    SHRED_OPERATION,
    Authorization,
    ReadIntent,
    audit_outside,
    authorize_service,
    authorize_staff_read,
)
from services.vault.catalogue import FIELD_TYPES
from services.vault.errors import (
    ApprovalRequired,
    ContactChangeRefused,
    InvalidField,
    ShredLedgerUnavailable,
    StoredIntegrity,
    SubjectShredded,
)
from services.vault.models import audit_log
from services.vault.records.schemas import (
    BulkRead,
    FieldMeta,
    FieldValue,
    Lookup,
    LookupMatch,
    LookupResult,
    ReadOptions,
    ReadRecord,
    ReadResult,
    RecordMeta,
    RecordView,
    ShredResult,
    StoredRecord,
    StoreRecord,
    TokenRead,
    TokenReadResult,
    TokenValue,
    UpdateRecord,
)
from services.vault.records.service import LoadedRecord, RecordService, append_to_ledger
from services.vault.state import GateDep, VaultDep

#: Every staff route of the vault needs a second factor (aal2), whatever the permission.
staff_router = APIRouter(prefix="/staff", tags=["records (staff)"], dependencies=[Depends(RequireAcr("aal2"))])
internal_router = APIRouter(prefix="/internal", tags=["records (services)"])

StaffReader = Annotated[Principal, Depends(RequirePermission(PERM_READ))]
StaffWriter = Annotated[Principal, Depends(RequirePermission(PERM_WRITE))]
StaffShredder = Annotated[Principal, Depends(RequirePermission(PERM_SHRED))]


class ListedService:
    """Route dependency: the calling service client is listed in the named settings (client ids).

    Checked before the body is validated or any record looked up, so an unlisted client learns
    nothing (not even whether a record exists)."""

    def __init__(self, *settings_names: str, what: str) -> None:
        self.settings_names = settings_names
        self.what = what

    async def __call__(self, request: Request, caller: ServiceCaller, vault: VaultDep) -> Principal:
        allowed = [client for name in self.settings_names for client in getattr(vault.settings, name)]
        try:
            authorize_service(caller, allowed, self.what)
        except SuiteError as exc:
            # Refused attempts land in the access log too (in a transaction of their own).
            await audit_outside(
                request,
                caller,
                action="vault.service_refused",
                outcome="denied",
                detail={"path": request.url.path, "method": request.method, "reason": exc.code},
            )
            raise
        return caller


ServiceWriter = Annotated[Principal, Depends(ListedService("service_writers", what="store and update records"))]
ServiceReader = Annotated[
    Principal, Depends(ListedService("service_readers", "service_decrypters", what="read or look up records"))
]
ServiceShredder = Annotated[Principal, Depends(ListedService("service_shredders", what="shred subjects"))]


def meta(loaded: LoadedRecord) -> dict[str, Any]:
    r = loaded.record
    return {
        "id": r.id,
        "token": r.token,
        "subject_id": r.subject_id,
        "label": r.label,
        "shredded": loaded.shredded,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "fields": {n: FieldMeta(token=f.token, data_class=f.data_class) for n, f in sorted(loaded.fields.items())},
    }


def masked_values(values: dict[str, str]) -> dict[str, str]:
    return {name: FIELD_TYPES[name].mask(value) for name, value in sorted(values.items())}


# --- shared operations ---------------------------------------------------------------------


async def _store(session: DBSession, vault: VaultDep, principal: Principal, body: StoreRecord) -> StoredRecord:
    service = RecordService(vault)
    loaded, values = await service.store(
        session,
        subject_id=body.subject_id,
        label=body.label,
        values=body.fields,
        created_by=principal.subject,
        key_name=body.key,
    )
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="vault.record.create",
        target=str(body.subject_id),
        detail={"record": str(loaded.record.id), "fields": sorted(values), "key": body.key},
    )
    return StoredRecord(**meta(loaded), masked=masked_values(values), changed=sorted(values))


async def _update(
    session: DBSession, vault: VaultDep, principal: Principal, record_id: uuid.UUID, body: UpdateRecord
) -> StoredRecord:
    service = RecordService(vault)
    (loaded,) = await service.load(session, ids=[record_id])
    if principal.kind is SubjectKind.staff:
        _refuse_contact_change(vault, loaded, body.fields)
    values, changed = await service.update(session, loaded, body.fields)
    await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="vault.record.update",
        target=str(loaded.record.subject_id),
        detail={"record": str(record_id), "fields": sorted(values), "changed": changed},
    )
    return StoredRecord(**meta(loaded), masked=masked_values(values), changed=changed)


def _refuse_contact_change(vault: VaultDep, loaded: LoadedRecord, values: dict[str, str]) -> None:
    """Staff never write where one-time codes go on a record identity owns: that is identity's flow."""
    settings = vault.settings
    if loaded.record.created_by not in settings.contact_owners:
        return
    touched = sorted(name for name in values if name in settings.contact_fields)
    if touched:
        raise ContactChangeRefused(
            f"{', '.join(touched)} of this record change only through {loaded.record.created_by}'s contact flow",
            fields=touched,
            owner=loaded.record.created_by,
        )


async def _authorize(
    request: Request,
    principal: Principal,
    *,
    intent: ReadIntent,
    gate: GateDep,
    vault: VaultDep,
    over_quota: str | None = None,
) -> Authorization:
    settings = vault.settings
    try:
        if principal.kind is SubjectKind.staff:
            return await authorize_staff_read(principal, intent, gate, settings, over_quota)
        allowed = (
            settings.service_decrypters
            if intent.unmasked
            else [
                *settings.service_readers,
                *settings.service_decrypters,
            ]
        )
        authorize_service(principal, allowed, "read personal data unmasked" if intent.unmasked else "read records")
        return Authorization()
    except SuiteError as exc:
        await audit_outside(
            request,
            principal,
            action="vault.decrypt" if intent.unmasked else "vault.read",
            outcome="denied",
            detail={**intent.detail(), "approval_id": intent.approval_id, "reason": exc.code},
            target=_target(intent),
        )
        raise


def _target(intent: ReadIntent) -> str | None:
    subjects = {str(s) for s in intent.subject_ids}
    return subjects.pop() if len(subjects) == 1 else None


async def _read(
    request: Request,
    *,
    session: DBSession,
    vault: VaultDep,
    gate: GateDep,
    principal: Principal,
    loaded: Sequence[LoadedRecord],
    options: ReadOptions,
) -> ReadResult:
    intent = ReadIntent(
        record_ids=[r.record.id for r in loaded],
        subject_ids=[r.record.subject_id for r in loaded],
        fields=list(options.fields),
        purpose=options.purpose.value,
        reference=options.reference,
        unmasked=options.unmasked,
        approval_id=str(options.approval_id) if options.approval_id else None,
    )
    if any(r.shredded for r in loaded):
        await audit_outside(
            request,
            principal,
            action="vault.read",
            outcome="gone",
            detail={**intent.detail(), "reason": SubjectShredded.code},
            target=_target(intent),
        )
        raise SubjectShredded("the data of at least one of these subjects was destroyed")
    over_quota: str | None = None
    if principal.kind is SubjectKind.staff:
        usage = await quota.consume(session, vault.settings, principal.subject, len(loaded))
        await quota.alert_if_near(request.app.state.database.sessionmaker, vault.settings, usage)
        over_quota = usage.reason() if usage.over else None
    auth = await _authorize(request, principal, intent=intent, gate=gate, vault=vault, over_quota=over_quota)
    service = RecordService(vault)
    views: list[RecordView] = []
    try:
        for item in loaded:
            clear = await service.decrypt(session, item, options.fields)
            views.append(
                RecordView(
                    id=item.record.id,
                    token=item.record.token,
                    subject_id=item.record.subject_id,
                    label=item.record.label,
                    fields={
                        name: FieldValue(
                            value=value if options.unmasked else FIELD_TYPES[name].mask(value),
                            masked=not options.unmasked,
                            token=item.fields[name].token,
                            data_class=item.fields[name].data_class,
                        )
                        for name, value in clear.items()
                    },
                )
            )
    except StoredIntegrity as exc:
        await audit_outside(
            request,
            principal,
            action="vault.integrity_failure",
            outcome="failure",
            detail={**intent.detail(), **exc.extensions},
            target=_target(intent),
        )
        raise
    entry = await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="vault.decrypt" if options.unmasked else "vault.read",
        target=_target(intent),
        detail={**intent.detail(), **auth.detail()},
    )
    return ReadResult(access_id=entry.id, unmasked=options.unmasked, records=views)


async def _read_tokens(
    request: Request, *, session: DBSession, vault: VaultDep, gate: GateDep, principal: Principal, body: TokenRead
) -> TokenReadResult:
    service = RecordService(vault)
    located = await service.load_by_field_tokens(session, body.tokens)
    record_ids = list(dict.fromkeys(rid for rid, _ in located.values()))
    loaded = await service.load(session, ids=record_ids)
    options = ReadOptions(
        purpose=body.purpose,
        reference=body.reference,
        fields=sorted({name for _, name in located.values()}),
        unmasked=body.unmasked,
        approval_id=body.approval_id,
    )
    result = await _read(
        request, session=session, vault=vault, gate=gate, principal=principal, loaded=loaded, options=options
    )
    by_id = {view.id: view for view in result.records}
    values = {
        token: TokenValue(
            record_id=rid,
            field=name,
            value=by_id[rid].fields[name].value,
            masked=by_id[rid].fields[name].masked,
        )
        for token, (rid, name) in located.items()
    }
    return TokenReadResult(access_id=result.access_id, unmasked=result.unmasked, values=values)


async def _lookup(session: DBSession, vault: VaultDep, principal: Principal, body: Lookup) -> LookupResult:
    if body.field not in FIELD_TYPES:
        raise InvalidField(f"unknown field {body.field}", errors=[{"field": body.field, "reason": "unknown"}])
    records = await RecordService(vault).lookup(session, body.field, body.value)
    subjects = sorted({str(r.subject_id) for r in records})
    entry = await audit_log.append(
        session,
        actor=principal.subject,
        actor_kind=principal.kind.value,
        action="vault.lookup",
        target=subjects[0] if len(subjects) == 1 else None,
        # The looked-up value is personal data: only the field name and the result ids are logged.
        detail={
            "field": body.field,
            "purpose": body.purpose.value,
            "reference": body.reference,
            "records": [str(r.id) for r in records],
            "subjects": subjects,
        },
    )
    return LookupResult(
        access_id=entry.id,
        matches=[LookupMatch(id=r.id, token=r.token, subject_id=r.subject_id, label=r.label) for r in records],
    )


async def _shred(
    session: DBSession,
    vault: VaultDep,
    principal: Principal,
    subject_id: uuid.UUID,
    approval: Authorization | None = None,
) -> ShredResult:
    newly, keys, records = await RecordService(vault).shred(session, subject_id)
    if newly:
        detail: dict[str, Any] = {"keys_destroyed": keys, "records": records}
        if approval is not None:
            detail.update(approval.detail())
        await audit_log.append(
            session,
            actor=principal.subject,
            actor_kind=principal.kind.value,
            action="vault.subject.shred",
            target=str(subject_id),
            detail=detail,
        )
        if vault.settings.shred_ledger_file:
            # Written inside the shred's transaction, before its commit: if the write fails the shred
            # rolls back; if the commit fails after it, the ledger names a subject whose shredding was
            # asked for and a restore completes it. A crash can never leave a shred the ledger lacks.
            try:
                await asyncio.to_thread(append_to_ledger, Path(vault.settings.shred_ledger_file), subject_id)
            except OSError as exc:
                raise ShredLedgerUnavailable("the shred ledger cannot be written; nothing was shredded") from exc
    return ShredResult(subject_id=subject_id, shredded=newly, keys_destroyed=keys, records=records)


async def _subject_records(session: DBSession, vault: VaultDep, subject_id: uuid.UUID) -> list[RecordMeta]:
    loaded = await RecordService(vault).records_of(session, subject_id)
    return [RecordMeta(**meta(item)) for item in loaded]


# --- staff routes --------------------------------------------------------------------------


@staff_router.post("/records", status_code=status.HTTP_201_CREATED, response_model=StoredRecord)
async def staff_store(body: StoreRecord, session: DBSession, vault: VaultDep, staff: StaffWriter) -> StoredRecord:
    """Store a personal-data record for a customer (needs `account:modify`).

    Values are validated and normalised per field type, encrypted with the
    subject's data key and answered masked, with the record's and every
    value's token (what other systems keep).
    """
    return await _store(session, vault, staff, body)


@staff_router.patch("/records/{record_id}", response_model=StoredRecord)
async def staff_update(
    record_id: uuid.UUID, body: UpdateRecord, session: DBSession, vault: VaultDep, staff: StaffWriter
) -> StoredRecord:
    """Set fields of a record (needs `account:modify`); an unchanged value keeps its token."""
    return await _update(session, vault, staff, record_id, body)


@staff_router.get("/records/{record_id}", response_model=RecordMeta)
async def staff_record_meta(
    record_id: uuid.UUID, session: DBSession, vault: VaultDep, staff: StaffReader
) -> RecordMeta:
    """A record's fields, classes and tokens, without any value (needs `vault:read`)."""
    (loaded,) = await RecordService(vault).load(session, ids=[record_id])
    return RecordMeta(**meta(loaded))


@staff_router.get("/subjects/{subject_id}/records", response_model=list[RecordMeta])
async def staff_subject_records(
    subject_id: uuid.UUID, session: DBSession, vault: VaultDep, staff: StaffReader
) -> list[RecordMeta]:
    """The records held for a customer, without values (needs `vault:read`)."""
    return await _subject_records(session, vault, subject_id)


async def _load_named(session: DBSession, vault: VaultDep, body: BulkRead) -> list[LoadedRecord]:
    """The records a bulk read names (by id or token); naming none is a 4xx, not an empty answer."""
    if not body.records and not body.tokens:
        raise InvalidField("name at least one record", errors=[{"field": "records", "reason": "empty"}])
    return await RecordService(vault).load(session, ids=body.records, tokens=body.tokens)


@staff_router.post("/records/{record_id}/reads", response_model=ReadResult)
async def staff_read(
    record_id: uuid.UUID,
    *,
    body: ReadRecord,
    request: Request,
    session: DBSession,
    vault: VaultDep,
    gate: GateDep,
    staff: StaffReader,
) -> ReadResult:
    """Read fields of one record, naming the purpose (needs `vault:read`).

    Masked by default. `unmasked: true` also needs `vault:decrypt` and a
    second factor; national ID, card and account numbers and transaction data
    also need an approved `vault.unmasked_read` request (`approval_id`; the
    403 `approval_required` problem carries the exact payload to approve).
    Authentication data is never shown unmasked to staff.
    """
    loaded = await RecordService(vault).load(session, ids=[record_id])
    return await _read(request, session=session, vault=vault, gate=gate, principal=staff, loaded=loaded, options=body)


@staff_router.post("/reads", response_model=ReadResult)
async def staff_bulk_read(
    body: BulkRead, *, request: Request, session: DBSession, vault: VaultDep, gate: GateDep, staff: StaffReader
) -> ReadResult:
    """Read fields of many records at once (by id or token); an unmasked bulk read needs an approval."""
    loaded = await _load_named(session, vault, body)
    return await _read(request, session=session, vault=vault, gate=gate, principal=staff, loaded=loaded, options=body)


@staff_router.post("/tokens/reads", response_model=TokenReadResult)
async def staff_token_read(
    body: TokenRead, *, request: Request, session: DBSession, vault: VaultDep, gate: GateDep, staff: StaffReader
) -> TokenReadResult:
    """Resolve value tokens (`tok_...`) to values, masked by default, under the same rules as reads."""
    return await _read_tokens(request, session=session, vault=vault, gate=gate, principal=staff, body=body)


@staff_router.post("/lookups", response_model=LookupResult)
async def staff_lookup(body: Lookup, session: DBSession, vault: VaultDep, staff: StaffReader) -> LookupResult:
    """Find records by exact value of an indexed field (blind index; nothing is decrypted).

    Answers record ids and tokens only; the value asked for is never logged.
    """
    return await _lookup(session, vault, staff, body)


def shred_payload(subject_id: uuid.UUID) -> dict[str, Any]:
    """What a `vault.shred` approval is bound to."""
    return {"subject_id": str(subject_id)}


@staff_router.delete("/subjects/{subject_id}", response_model=ShredResult)
async def staff_shred(
    subject_id: uuid.UUID,
    *,
    session: DBSession,
    vault: VaultDep,
    gate: GateDep,
    staff: StaffShredder,
    approval_id: Annotated[uuid.UUID | None, Query(description="The approved `vault.shred` request.")] = None,
) -> ShredResult:
    """Crypto-shred a customer (needs `account:close`, aal2 and an approved `vault.shred` request: an
    irreversible action takes two people). Without `approval_id` the 403 `approval_required` problem
    carries the exact payload to approve; the approval executes once."""
    payload = shred_payload(subject_id)
    if approval_id is None:
        raise ApprovalRequired(
            "crypto-shredding a customer needs an approved request",
            operation=SHRED_OPERATION,
            payload=payload,
            payload_hash=payload_hash(payload),
            reasons=["irreversible destruction of a customer's personal data"],
        )
    outcome = await gate.execute_approval(str(approval_id), SHRED_OPERATION, payload)
    approved = Authorization(approval_id=str(approval_id), approved_by=[str(a) for a in outcome.get("approved_by", [])])
    return await _shred(session, vault, staff, subject_id, approved)


# --- internal routes (services) -------------------------------------------------------------


@internal_router.post("/records", status_code=status.HTTP_201_CREATED, response_model=StoredRecord)
async def service_store(body: StoreRecord, session: DBSession, vault: VaultDep, caller: ServiceWriter) -> StoredRecord:
    """Store a personal-data record (services in `service_writers`, e.g. identity at sign-up)."""
    return await _store(session, vault, caller, body)


@internal_router.patch("/records/{record_id}", response_model=StoredRecord)
async def service_update(
    record_id: uuid.UUID, body: UpdateRecord, session: DBSession, vault: VaultDep, caller: ServiceWriter
) -> StoredRecord:
    """Set fields of a record (services in `service_writers`)."""
    return await _update(session, vault, caller, record_id, body)


@internal_router.post("/records/{record_id}/reads", response_model=ReadResult)
async def service_read(
    record_id: uuid.UUID,
    *,
    body: ReadRecord,
    request: Request,
    session: DBSession,
    vault: VaultDep,
    gate: GateDep,
    caller: ServiceReader,
) -> ReadResult:
    """Read fields of a record: masked for `service_readers`, unmasked for `service_decrypters`."""
    loaded = await RecordService(vault).load(session, ids=[record_id])
    return await _read(request, session=session, vault=vault, gate=gate, principal=caller, loaded=loaded, options=body)


@internal_router.post("/reads", response_model=ReadResult)
async def service_bulk_read(
    body: BulkRead, *, request: Request, session: DBSession, vault: VaultDep, gate: GateDep, caller: ServiceReader
) -> ReadResult:
    """Read fields of many records (by id or token)."""
    loaded = await _load_named(session, vault, body)
    return await _read(request, session=session, vault=vault, gate=gate, principal=caller, loaded=loaded, options=body)


@internal_router.post("/tokens/reads", response_model=TokenReadResult)
async def service_token_read(
    body: TokenRead, *, request: Request, session: DBSession, vault: VaultDep, gate: GateDep, caller: ServiceReader
) -> TokenReadResult:
    """Resolve value tokens to values (e.g. identity turning a phone token into the number to text)."""
    return await _read_tokens(request, session=session, vault=vault, gate=gate, principal=caller, body=body)


@internal_router.post("/lookups", response_model=LookupResult)
async def service_lookup(body: Lookup, session: DBSession, vault: VaultDep, caller: ServiceReader) -> LookupResult:
    """Find records by exact value of an indexed field (services in `service_readers`)."""
    return await _lookup(session, vault, caller, body)


@internal_router.delete("/subjects/{subject_id}", response_model=ShredResult)
async def service_shred(
    subject_id: uuid.UUID, session: DBSession, vault: VaultDep, caller: ServiceShredder
) -> ShredResult:
    """Crypto-shred a customer on account closure (services in `service_shredders`; idempotent, so
    a redelivered outbox message does nothing the second time)."""
    return await _shred(session, vault, caller, subject_id)
