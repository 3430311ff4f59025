"""Records through the app in process: storing, masked and unmasked reads, approvals, lookup, integrity, shredding.

Permission decisions come from ``FakePermissions`` (tests/vault/conftest.py),
which stands in for the permissions service's check and approval API.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from services.vault.access.policy import UNMASKED_READ_OPERATION
from services.vault.models import DataKey, RecordField
from tests.vault.conftest import VaultClient

PROFILE = {"name": "张三", "national_id": "11010519491231002X", "phone": "13812345678", "bank_card": "6222021234561234"}


async def store(vault: VaultClient, fields: dict[str, str] | None = None, subject: str | None = None) -> dict[str, Any]:
    response = await vault.http.post(
        "/staff/records",
        json={"subject_id": subject or str(uuid.uuid4()), "fields": fields or PROFILE},
        headers=vault.staff("account:modify"),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def read(vault: VaultClient, record_id: str, headers: dict[str, str], fields: list[str], **extra: Any) -> Any:
    return await vault.http.post(
        f"/staff/records/{record_id}/reads",
        json={"purpose": "customer_service", "fields": fields, **extra},
        headers=headers,
    )


async def access_log(vault: VaultClient, **params: str) -> list[dict[str, Any]]:
    response = await vault.http.get("/staff/access-log", params=params, headers=vault.staff("audit:read"))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


async def test_store_answers_masked_values_and_tokens(vault: VaultClient) -> None:
    body = await store(vault)
    assert body["masked"] == {
        "bank_card": "6222 **** **** 1234",
        "name": "张*",
        "national_id": "110***********002X",
        "phone": "138****5678",
    }
    assert body["token"].startswith("rec_")
    assert {f["token"][:4] for f in body["fields"].values()} == {"tok_"}
    assert body["fields"]["bank_card"]["data_class"] == "transaction"


async def test_values_are_stored_encrypted(vault: VaultClient) -> None:
    body = await store(vault)
    engine = create_async_engine(vault.database_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(RecordField.ciphertext))).scalars().all()
    await engine.dispose()
    for blob in rows:
        assert b"13812345678" not in blob
        assert "张三".encode() not in blob
    assert body["id"]


async def test_teller_reads_masked_and_is_refused_unmasked(vault: VaultClient) -> None:
    body = await store(vault)
    teller = vault.staff("vault:read")
    masked = await read(vault, body["id"], teller, ["name", "phone"])
    assert masked.status_code == 200
    fields = masked.json()["records"][0]["fields"]
    assert fields["phone"] == {
        "value": "138****5678",
        "masked": True,
        "token": body["fields"]["phone"]["token"],
        "data_class": "core_identity",
    }
    refused = await read(vault, body["id"], teller, ["name", "phone"], unmasked=True)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    # Neither the value nor its masked form: a bare "138" can occur in the random ids of a problem body.
    assert "13812345678" not in refused.text
    assert "138****5678" not in refused.text
    assert "张" not in refused.text
    denied = await access_log(vault, outcome="denied")
    assert [e["detail"]["reason"] for e in denied] == ["permission_denied"]


async def test_no_read_without_vault_read(vault: VaultClient) -> None:
    body = await store(vault)
    response = await read(vault, body["id"], vault.staff(), ["name"])
    assert response.status_code == 403
    customer = await read(vault, body["id"], vault.customer(str(uuid.uuid4())), ["name"])
    assert customer.status_code == 403


async def test_unmasked_read_with_permission_is_logged(vault: VaultClient) -> None:
    body = await store(vault)
    officer_id = str(uuid.uuid4())
    officer = vault.staff("vault:read", "vault:decrypt", subject=officer_id)
    response = await read(vault, body["id"], officer, ["name", "phone"], unmasked=True, reference="CASE-7")
    assert response.status_code == 200, response.text
    values = {k: v["value"] for k, v in response.json()["records"][0]["fields"].items()}
    assert values == {"name": "张三", "phone": "13812345678"}
    (entry,) = await access_log(vault, actor=officer_id)
    assert entry["id"] == response.json()["access_id"]
    assert entry["action"] == "vault.decrypt"
    assert entry["target"] == body["subject_id"]
    assert entry["detail"]["fields"] == ["name", "phone"]
    assert entry["detail"]["purpose"] == "customer_service"
    assert entry["detail"]["reference"] == "CASE-7"
    assert entry["detail"]["grant_id"]
    # The log holds ids, never the values read.
    assert "13812345678" not in str(entry)
    assert "张三" not in str(entry)


async def test_unmasked_needs_a_second_factor(vault: VaultClient) -> None:
    body = await store(vault)
    officer = vault.staff("vault:read", "vault:decrypt", acr="aal1")
    response = await read(vault, body["id"], officer, ["phone"], unmasked=True)
    assert response.status_code == 403
    assert response.json()["code"] == "step_up_required"


async def test_sensitive_unmasked_read_needs_an_approval_that_executes_once(vault: VaultClient) -> None:
    body = await store(vault)
    officer_id = str(uuid.uuid4())
    officer = vault.staff("vault:read", "vault:decrypt", subject=officer_id)
    refused = await read(vault, body["id"], officer, ["national_id"], unmasked=True)
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["code"] == "approval_required"
    assert problem["operation"] == UNMASKED_READ_OPERATION
    assert problem["payload"] == {
        "reader": officer_id,
        "records": [body["id"]],
        "fields": ["national_id"],
        "purpose": "customer_service",
    }
    approval = vault.permissions.approve(UNMASKED_READ_OPERATION, problem["payload"])
    allowed = await read(vault, body["id"], officer, ["national_id"], unmasked=True, approval_id=approval)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["records"][0]["fields"]["national_id"]["value"] == "11010519491231002X"
    replay = await read(vault, body["id"], officer, ["national_id"], unmasked=True, approval_id=approval)
    assert replay.status_code == 409
    assert replay.json()["approval_code"] == "approval_already_executed"
    (entry,) = await access_log(vault, actor=officer_id, outcome="success")
    assert entry["detail"]["approval_id"] == approval
    assert entry["detail"]["approved_by"] == ["checker-1"]


async def test_an_approval_for_other_fields_or_another_reader_does_not_work(vault: VaultClient) -> None:
    body = await store(vault)
    officer_id = str(uuid.uuid4())
    officer = vault.staff("vault:read", "vault:decrypt", subject=officer_id)
    payload = {"reader": officer_id, "records": [body["id"]], "fields": ["bank_card"], "purpose": "customer_service"}
    approval = vault.permissions.approve(UNMASKED_READ_OPERATION, payload)
    wider = await read(vault, body["id"], officer, ["bank_card", "national_id"], unmasked=True, approval_id=approval)
    assert wider.status_code == 409
    assert wider.json()["approval_code"] == "approval_payload_mismatch"
    colleague = vault.staff("vault:read", "vault:decrypt")
    borrowed = await read(vault, body["id"], colleague, ["bank_card"], unmasked=True, approval_id=approval)
    assert borrowed.status_code == 409


async def test_bulk_unmasked_read_needs_an_approval(vault: VaultClient) -> None:
    ids = [(await store(vault, {"name": f"李{i}", "phone": f"1390000{i:04d}"}))["id"] for i in range(11)]
    officer = vault.staff("vault:read", "vault:decrypt")
    bulk = await vault.http.post(
        "/staff/reads",
        json={"records": ids, "purpose": "kyc_review", "fields": ["phone"], "unmasked": True},
        headers=officer,
    )
    assert bulk.status_code == 403
    assert "bulk" in bulk.json()["detail"]
    masked = await vault.http.post(
        "/staff/reads", json={"records": ids, "purpose": "kyc_review", "fields": ["phone"]}, headers=officer
    )
    assert masked.status_code == 200
    assert len(masked.json()["records"]) == 11


async def test_authentication_data_is_never_unmasked_for_staff(vault: VaultClient) -> None:
    body = await store(vault, {"security_answer": "my first school"})
    officer = vault.staff("vault:read", "vault:decrypt")
    response = await read(vault, body["id"], officer, ["security_answer"], unmasked=True)
    assert response.status_code == 403
    assert response.json()["code"] == "vault_access_denied"
    masked = await read(vault, body["id"], officer, ["security_answer"])
    assert masked.json()["records"][0]["fields"]["security_answer"]["value"] == "******"


async def test_lookup_by_national_id_and_phone_uses_the_blind_index(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    body = await store(vault, subject=subject)
    await store(vault, {"national_id": "110105198506150030", "phone": "13900000000"})
    teller = vault.staff("vault:read")
    found = await vault.http.post(
        "/staff/lookups",
        json={"field": "national_id", "value": "110105 19491231 002x", "purpose": "customer_service"},
        headers=teller,
    )
    assert found.status_code == 200, found.text
    assert [m["subject_id"] for m in found.json()["matches"]] == [subject]
    by_phone = await vault.http.post(
        "/staff/lookups",
        json={"field": "phone", "value": "+86 138-1234-5678", "purpose": "customer_service"},
        headers=teller,
    )
    assert [m["id"] for m in by_phone.json()["matches"]] == [body["id"]]
    entries = await access_log(vault, action="vault.lookup")
    assert all("11010519491231002X" not in str(e) and "13812345678" not in str(e) for e in entries)
    not_indexed = await vault.http.post(
        "/staff/lookups", json={"field": "name", "value": "张三", "purpose": "customer_service"}, headers=teller
    )
    assert not_indexed.status_code == 400


async def test_a_passport_customer_with_an_international_phone_is_stored_masked_and_found(vault: VaultClient) -> None:
    """Document numbers and E.164 phones: masked, found however they are typed, unmasked only with an approval."""
    digits = f"{uuid.uuid4().int % 10**8:08d}"
    passport, phone = f"E{digits}", f"+4479{digits}"
    subject = str(uuid.uuid4())
    body = await store(
        vault,
        {"name": "Jane Doe", "id_document": f"e {digits[:4]}-{digits[4:]}", "phone": f"0044 79{digits}"},
        subject=subject,
    )
    assert body["masked"]["id_document"] == f"E*****{digits[-3:]}"
    assert body["masked"]["phone"] == f"+44****{digits[-4:]}"
    teller = vault.staff("vault:read")
    for field, typed in (("id_document", f"Ｅ{digits}"), ("phone", f"+44 (79) {digits}")):
        found = await vault.http.post(
            "/staff/lookups", json={"field": field, "value": typed, "purpose": "kyc_review"}, headers=teller
        )
        assert found.status_code == 200, found.text
        assert [m["subject_id"] for m in found.json()["matches"]] == [subject], field
    officer = vault.staff("vault:read", "vault:decrypt")
    refused = await read(vault, body["id"], officer, ["id_document"], unmasked=True)
    assert (refused.status_code, refused.json()["code"]) == (403, "approval_required")
    clear = await read(vault, body["id"], officer, ["phone"], unmasked=True)
    assert clear.json()["records"][0]["fields"]["phone"]["value"] == phone
    assert passport not in str(await access_log(vault, action="vault.lookup"))


async def test_moved_or_tampered_ciphertext_is_an_integrity_error_not_a_500(vault: VaultClient) -> None:
    body = await store(vault)
    engine = create_async_engine(vault.database_url)
    async with engine.begin() as connection:
        phone = (
            await connection.execute(select(RecordField.ciphertext).where(RecordField.name == "phone"))
        ).scalar_one()
        # Put the phone's ciphertext in the name field of the same record.
        await connection.execute(update(RecordField).where(RecordField.name == "name").values(ciphertext=phone))
    officer = vault.staff("vault:read", "vault:decrypt")
    moved = await read(vault, body["id"], officer, ["name"], unmasked=True)
    assert moved.status_code == 409
    assert moved.json()["code"] == "integrity_error"
    assert moved.json()["field"] == "name"
    masked = await read(vault, body["id"], vault.staff("vault:read"), ["name"])
    assert masked.status_code == 409
    async with engine.begin() as connection:
        blob = bytearray(phone)
        blob[20] ^= 0x01
        await connection.execute(update(RecordField).where(RecordField.name == "phone").values(ciphertext=bytes(blob)))
    await engine.dispose()
    tampered = await read(vault, body["id"], officer, ["phone"], unmasked=True)
    assert tampered.status_code == 409
    assert tampered.json()["code"] == "integrity_error"
    assert "13812345678" not in tampered.text
    failures = await access_log(vault, action="vault.integrity_failure")
    assert len(failures) == 3


async def test_a_ciphertext_moved_to_another_subject_fails(vault: VaultClient) -> None:
    first = await store(vault, {"phone": "13811111111"})
    second = await store(vault, {"phone": "13822222222"})
    engine = create_async_engine(vault.database_url)
    async with engine.begin() as connection:
        blob = (
            await connection.execute(
                select(RecordField.ciphertext).where(RecordField.record_id == uuid.UUID(first["id"]))
            )
        ).scalar_one()
        await connection.execute(
            update(RecordField).where(RecordField.record_id == uuid.UUID(second["id"])).values(ciphertext=blob)
        )
    await engine.dispose()
    response = await read(vault, second["id"], vault.staff("vault:read", "vault:decrypt"), ["phone"], unmasked=True)
    assert response.status_code == 409
    assert response.json()["code"] == "integrity_error"


async def test_shredding_destroys_the_keys(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    body = await store(vault, subject=subject)
    other = await store(vault)
    shredder = vault.staff("account:close")
    response = await vault.shred(subject, shredder)
    assert response.status_code == 200, response.text
    assert response.json() == {"subject_id": subject, "shredded": True, "keys_destroyed": 1, "records": 1}
    again = await vault.shred(subject, shredder)
    assert again.json()["shredded"] is False
    officer = vault.staff("vault:read", "vault:decrypt")
    gone = await read(vault, body["id"], officer, ["phone"], unmasked=True)
    assert gone.status_code == 410
    assert gone.json()["code"] == "subject_shredded"
    lookup = await vault.http.post(
        "/staff/lookups",
        json={"field": "national_id", "value": PROFILE["national_id"], "purpose": "customer_service"},
        headers=officer,
    )
    assert [m["id"] for m in lookup.json()["matches"]] == [other["id"]]
    engine = create_async_engine(vault.database_url)
    async with engine.connect() as connection:
        keys = (await connection.execute(select(DataKey).where(DataKey.subject_id == uuid.UUID(subject)))).all()
    await engine.dispose()
    assert keys == []
    refill = await vault.http.post(
        "/staff/records",
        json={"subject_id": subject, "fields": {"phone": "13812345678"}},
        headers=vault.staff("account:modify"),
    )
    assert refill.status_code == 410
    assert (await read(vault, other["id"], officer, ["phone"], unmasked=True)).status_code == 200


async def test_shredding_needs_its_permission(vault: VaultClient) -> None:
    body = await store(vault)
    response = await vault.shred(body["subject_id"], vault.staff("vault:read", "vault:decrypt"))
    assert response.status_code == 403


async def test_update_keeps_the_token_of_an_unchanged_value(vault: VaultClient) -> None:
    body = await store(vault)
    writer = vault.staff("account:modify")
    response = await vault.http.patch(
        f"/staff/records/{body['id']}",
        json={"fields": {"phone": "138 1234 5678", "name": "张三丰"}},
        headers=writer,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["changed"] == ["name"]
    assert updated["fields"]["phone"]["token"] == body["fields"]["phone"]["token"]
    assert updated["fields"]["name"]["token"] != body["fields"]["name"]["token"]
    assert updated["masked"]["name"] == "张**"


async def test_token_reads_resolve_values(vault: VaultClient) -> None:
    body = await store(vault)
    token = body["fields"]["phone"]["token"]
    response = await vault.http.post(
        "/staff/tokens/reads",
        json={"tokens": [token], "purpose": "customer_service", "unmasked": True},
        headers=vault.staff("vault:read", "vault:decrypt"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["values"][token]["value"] == "13812345678"
    unknown = await vault.http.post(
        "/staff/tokens/reads",
        json={"tokens": ["tok_nope"], "purpose": "customer_service"},
        headers=vault.staff("vault:read"),
    )
    assert unknown.status_code == 404


async def test_bad_input_is_a_4xx_and_writes_nothing(vault: VaultClient) -> None:
    writer = vault.staff("account:modify")
    subject = str(uuid.uuid4())
    invalid = await vault.http.post(
        "/staff/records",
        json={"subject_id": subject, "fields": {"phone": "13812345678", "national_id": "123"}},
        headers=writer,
    )
    assert invalid.status_code == 400
    assert invalid.json()["code"] == "invalid_field"
    assert invalid.json()["errors"][0]["field"] == "national_id"
    assert "123" not in invalid.json()["errors"][0]["reason"]
    unknown = await vault.http.post(
        "/staff/records", json={"subject_id": subject, "fields": {"shoe_size": "42"}}, headers=writer
    )
    assert unknown.status_code == 422
    listed = await vault.http.get(f"/staff/subjects/{subject}/records", headers=vault.staff("vault:read"))
    assert listed.json() == []
    no_purpose = await vault.http.post(
        f"/staff/records/{uuid.uuid4()}/reads", json={"fields": ["name"]}, headers=vault.staff("vault:read")
    )
    assert no_purpose.status_code == 422
    missing = await read(vault, str(uuid.uuid4()), vault.staff("vault:read"), ["name"])
    assert missing.status_code == 404


async def test_services_are_allowed_by_client_id(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    stored = await vault.http.post(
        "/internal/records",
        json={"subject_id": subject, "fields": {"phone": "13812345678"}},
        headers=vault.service("identity"),
    )
    assert stored.status_code == 201, stored.text
    record = stored.json()["id"]
    refused_writer = await vault.http.post(
        "/internal/records",
        json={"subject_id": subject, "fields": {"phone": "13812345678"}},
        headers=vault.service("risk"),
    )
    assert refused_writer.status_code == 403
    body = {"purpose": "customer_notification", "fields": ["phone"], "unmasked": True}
    clear = await vault.http.post(f"/internal/records/{record}/reads", json=body, headers=vault.service("identity"))
    assert clear.json()["records"][0]["fields"]["phone"]["value"] == "13812345678"
    risk = await vault.http.post(f"/internal/records/{record}/reads", json=body, headers=vault.service("risk"))
    assert risk.status_code == 403
    masked = await vault.http.post(
        f"/internal/records/{record}/reads", json={**body, "unmasked": False}, headers=vault.service("risk")
    )
    assert masked.json()["records"][0]["fields"]["phone"]["value"] == "138****5678"
    staff_token = await vault.http.post(f"/internal/records/{record}/reads", json=body, headers=vault.staff())
    assert staff_token.status_code == 403
    shred = await vault.http.delete(f"/internal/subjects/{subject}", headers=vault.service("identity"))
    assert shred.json()["shredded"] is True


async def test_customer_sees_who_read_their_data(vault: VaultClient) -> None:
    subject = str(uuid.uuid4())
    body = await store(vault, subject=subject)
    await read(vault, body["id"], vault.staff("vault:read"), ["phone"])
    response = await vault.http.get("/customer/access-log", headers=vault.customer(subject))
    assert response.status_code == 200
    (entry,) = response.json()
    assert entry["actor_kind"] == "staff"
    assert entry["fields"] == ["phone"]
    assert entry["purpose"] == "customer_service"
    stranger = await vault.http.get("/customer/access-log", headers=vault.customer(str(uuid.uuid4())))
    assert stranger.json() == []


async def test_the_access_log_needs_audit_read_and_its_chain_verifies(vault: VaultClient) -> None:
    body = await store(vault)
    await read(vault, body["id"], vault.staff("vault:read"), ["phone"])
    refused = await vault.http.get("/staff/access-log", headers=vault.staff("vault:read"))
    assert refused.status_code == 403
    report = await vault.http.get("/staff/access-log/verify", headers=vault.staff("audit:verify"))
    assert report.json()["ok"] is True
    assert report.json()["entries_checked"] >= 2


async def test_catalogue_lists_classes_and_masks(vault: VaultClient) -> None:
    response = await vault.http.get("/me/catalogue", headers=vault.staff())
    assert response.status_code == 200
    fields = {f["name"]: f for f in response.json()["fields"]}
    assert fields["phone"]["example_masked"] == "138****5678"
    assert fields["national_id"]["approval_for_unmasked"] is True
    assert fields["id_document"]["approval_for_unmasked"] is True
    assert fields["id_document"]["data_class"] == "core_identity"
