"""Encryption as a service: single and batch calls, context binding, ownership, rotation and rewrap."""

from __future__ import annotations

import base64

from tests.vault.conftest import VaultClient


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def encrypt(
    vault: VaultClient, key: str, plaintext: bytes, context: bytes = b"", service: str = "identity"
) -> str:
    response = await vault.http.post(
        f"/internal/transit/keys/{key}/encrypt",
        json={"plaintext": b64(plaintext), "context": b64(context)},
        headers=vault.service(service),
    )
    assert response.status_code == 200, response.text
    ciphertext: str = response.json()["ciphertext"]
    return ciphertext


async def test_encrypt_decrypt_round_trip_with_context(vault: VaultClient) -> None:
    ciphertext = await encrypt(vault, "identity-totp", b"JBSWY3DPEHPK3PXP", b"account:42")
    assert ciphertext.startswith("vault:v1:")
    ok = await vault.http.post(
        "/internal/transit/keys/identity-totp/decrypt",
        json={"ciphertext": ciphertext, "context": b64(b"account:42")},
        headers=vault.service("identity"),
    )
    assert ok.status_code == 200
    assert base64.b64decode(ok.json()["plaintext"]) == b"JBSWY3DPEHPK3PXP"
    other_account = await vault.http.post(
        "/internal/transit/keys/identity-totp/decrypt",
        json={"ciphertext": ciphertext, "context": b64(b"account:43")},
        headers=vault.service("identity"),
    )
    assert other_account.status_code == 400
    assert other_account.json()["code"] == "integrity_error"


async def test_tampered_or_malformed_ciphertexts_are_4xx(vault: VaultClient) -> None:
    ciphertext = await encrypt(vault, "k1", b"secret")
    prefix, body = ciphertext.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    for bad, code in (
        (f"{prefix}:{b64(bytes(raw))}", "integrity_error"),
        (ciphertext.replace("vault:v1:", "vault:v7:"), "invalid_key_version"),
        ("vault:v1:***", "malformed_ciphertext"),
        ("plain text", "malformed_ciphertext"),
    ):
        response = await vault.http.post(
            "/internal/transit/keys/k1/decrypt", json={"ciphertext": bad}, headers=vault.service("identity")
        )
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["code"] == code


async def test_a_key_belongs_to_its_service(vault: VaultClient) -> None:
    ciphertext = await encrypt(vault, "identity-keys", b"private key bytes")
    stolen = await vault.http.post(
        "/internal/transit/keys/identity-keys/decrypt", json={"ciphertext": ciphertext}, headers=vault.service("risk")
    )
    assert stolen.status_code == 403
    staff = await vault.http.post(
        "/internal/transit/keys/identity-keys/decrypt",
        json={"ciphertext": ciphertext},
        headers=vault.staff("vault:decrypt"),
    )
    assert staff.status_code == 403
    unknown = await vault.http.post(
        "/internal/transit/keys/nope/decrypt", json={"ciphertext": ciphertext}, headers=vault.service("identity")
    )
    assert unknown.status_code == 404
    records_key = await vault.http.post(
        "/staff/records",
        json={"subject_id": "5b0e3c59-0a57-4c0f-9d39-1f3a4b8e2c11", "fields": {"name": "王五"}},
        headers=vault.staff("account:modify"),
    )
    assert records_key.status_code == 201
    misuse = await vault.http.post(
        "/internal/transit/keys/records/encrypt", json={"plaintext": b64(b"x")}, headers=vault.service("identity")
    )
    assert misuse.status_code == 400
    assert misuse.json()["code"] == "key_purpose_mismatch"


async def test_batches_are_all_or_nothing(vault: VaultClient) -> None:
    items = [{"plaintext": b64(f"secret-{i}".encode()), "context": b64(str(i).encode())} for i in range(100)]
    encrypted = await vault.http.post(
        "/internal/transit/keys/batch-key/encrypt/batch", json={"items": items}, headers=vault.service("identity")
    )
    assert encrypted.status_code == 200, encrypted.text
    ciphertexts = [r["ciphertext"] for r in encrypted.json()["results"]]
    back = await vault.http.post(
        "/internal/transit/keys/batch-key/decrypt/batch",
        json={"items": [{"ciphertext": c, "context": b64(str(i).encode())} for i, c in enumerate(ciphertexts)]},
        headers=vault.service("identity"),
    )
    assert [base64.b64decode(r["plaintext"]) for r in back.json()["results"]] == [
        f"secret-{i}".encode() for i in range(100)
    ]
    swapped = [{"ciphertext": c, "context": b64(str(i).encode())} for i, c in enumerate(ciphertexts)]
    swapped[3]["context"], swapped[4]["context"] = swapped[4]["context"], swapped[3]["context"]
    failed = await vault.http.post(
        "/internal/transit/keys/batch-key/decrypt/batch", json={"items": swapped}, headers=vault.service("identity")
    )
    assert failed.status_code == 400
    assert failed.json()["code"] == "integrity_error"
    assert [e["index"] for e in failed.json()["errors"]] == [3, 4]
    assert "results" not in failed.json()
    extra_key = await vault.http.post(
        "/internal/transit/keys/batch-key/decrypt/batch",
        json={"items": [{"ciphertext": ciphertexts[0], "key": "other"}]},
        headers=vault.service("identity"),
    )
    assert extra_key.status_code == 422
    bad_base64 = await vault.http.post(
        "/internal/transit/keys/batch-key/encrypt/batch",
        json={"items": [{"plaintext": "aGk="}, {"plaintext": "not base64!"}]},
        headers=vault.service("identity"),
    )
    assert bad_base64.status_code == 400
    assert bad_base64.json()["errors"] == [{"index": 1, "code": "malformed_ciphertext"}]
    too_many = await vault.http.post(
        "/internal/transit/keys/batch-key/encrypt/batch",
        json={"items": [{"plaintext": ""}] * 1001},
        headers=vault.service("identity"),
    )
    assert too_many.status_code == 400


async def test_rotation_rewrap_and_retirement_of_a_transit_key(vault: VaultClient) -> None:
    old = await encrypt(vault, "rot", b"seed")
    custodian = vault.staff("vault:key_rotate")
    assert (await vault.http.post("/staff/keys/rot/rotate", headers=custodian)).json()["current_version"] == 2
    new = await encrypt(vault, "rot", b"seed")
    assert new.startswith("vault:v2:")
    for ciphertext in (old, new):
        response = await vault.http.post(
            "/internal/transit/keys/rot/decrypt", json={"ciphertext": ciphertext}, headers=vault.service("identity")
        )
        assert base64.b64decode(response.json()["plaintext"]) == b"seed"
    rewrapped = await vault.http.post(
        "/internal/transit/keys/rot/rewrap/batch",
        json={"items": [{"ciphertext": old}]},
        headers=vault.service("identity"),
    )
    assert rewrapped.json()["results"][0]["ciphertext"].startswith("vault:v2:")
    assert "plaintext" not in rewrapped.text
    await vault.http.patch("/staff/keys/rot", json={"min_decryption_version": 2}, headers=custodian)
    retired = await vault.http.post(
        "/internal/transit/keys/rot/decrypt", json={"ciphertext": old}, headers=vault.service("identity")
    )
    assert retired.status_code == 400
    assert retired.json()["code"] == "key_version_retired"
    fresh = await vault.http.post(
        "/internal/transit/keys/rot/decrypt",
        json={"ciphertext": rewrapped.json()["results"][0]["ciphertext"]},
        headers=vault.service("identity"),
    )
    assert base64.b64decode(fresh.json()["plaintext"]) == b"seed"


async def test_a_batch_of_mixed_versions_and_contexts_checks_every_item(vault: VaultClient) -> None:
    """A batch resolves each (version, context) pair once; each item is still opened and checked on its own."""
    contexts = [b"account:1", b"account:2"]
    old = [await encrypt(vault, "mixed", f"old-{i}".encode(), contexts[i % 2]) for i in range(4)]
    custodian = vault.staff("vault:key_rotate")
    assert (await vault.http.post("/staff/keys/mixed/rotate", headers=custodian)).status_code == 200
    new = [await encrypt(vault, "mixed", f"new-{i}".encode(), contexts[i % 2]) for i in range(4)]
    # Indexes 0-3 are under version 1, 4-7 under version 2; the two contexts alternate.
    items = [{"ciphertext": c, "context": b64(contexts[i % 2])} for i, c in enumerate(old + new)]
    url = "/internal/transit/keys/mixed/decrypt/batch"
    ok = await vault.http.post(url, json={"items": items}, headers=vault.service("identity"))
    assert ok.status_code == 200, ok.text
    assert [base64.b64decode(r["plaintext"]) for r in ok.json()["results"]] == [
        *(f"old-{i}".encode() for i in range(4)),
        *(f"new-{i}".encode() for i in range(4)),
    ]
    assert [r["key_version"] for r in ok.json()["results"]] == [1] * 4 + [2] * 4

    bad = [dict(item) for item in items]
    # A version-1 ciphertext relabelled as version 2, after a good (2, context) item was opened.
    bad[6]["ciphertext"] = old[2].replace("vault:v1:", "vault:v2:")
    # The same undecodable context twice, and the same unknown version twice: each item fails.
    bad[1]["context"] = bad[3]["context"] = "not base64!"
    bad[5]["ciphertext"] = bad[7]["ciphertext"] = new[1].replace("vault:v2:", "vault:v9:")
    failed = await vault.http.post(url, json={"items": bad}, headers=vault.service("identity"))
    assert failed.status_code == 400
    assert "results" not in failed.json()
    assert failed.json()["errors"] == [
        {"index": 1, "code": "malformed_ciphertext"},
        {"index": 3, "code": "malformed_ciphertext"},
        {"index": 5, "code": "invalid_key_version"},
        {"index": 6, "code": "integrity_error"},
        {"index": 7, "code": "invalid_key_version"},
    ]


async def test_sm4_transit_key_and_decrypts_are_logged(vault: VaultClient) -> None:
    response = await vault.http.post(
        "/internal/transit/keys/sm4-key/encrypt",
        json={"plaintext": b64(b"national standard"), "algorithm": "sm4-gcm"},
        headers=vault.service("identity"),
    )
    ciphertext = response.json()["ciphertext"]
    keys = await vault.http.get("/staff/keys/sm4-key", headers=vault.staff("vault:key_rotate"))
    assert keys.json()["algorithm"] == "sm4-gcm"
    assert keys.json()["owner"] == "identity"
    back = await vault.http.post(
        "/internal/transit/keys/sm4-key/decrypt", json={"ciphertext": ciphertext}, headers=vault.service("identity")
    )
    assert base64.b64decode(back.json()["plaintext"]) == b"national standard"
    log = await vault.http.get(
        "/staff/access-log", params={"action": "vault.transit.decrypt"}, headers=vault.staff("audit:read")
    )
    (entry,) = log.json()["entries"]
    assert (entry["actor"], entry["target"], entry["detail"]["count"]) == ("identity", "sm4-key", 1)


async def test_datakey_for_envelope_encryption_by_the_caller(vault: VaultClient) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    response = await vault.http.post(
        "/internal/transit/keys/files/datakey", json={"context": b64(b"file:42")}, headers=vault.service("identity")
    )
    assert response.status_code == 200, response.text
    key = base64.b64decode(response.json()["plaintext"])
    assert len(key) == 32
    sealed = AESGCM(key).encrypt(b"\x00" * 12, b"a large blob", None)
    unwrapped = await vault.http.post(
        "/internal/transit/keys/files/decrypt",
        json={"ciphertext": response.json()["ciphertext"], "context": b64(b"file:42")},
        headers=vault.service("identity"),
    )
    again = base64.b64decode(unwrapped.json()["plaintext"])
    assert AESGCM(again).decrypt(b"\x00" * 12, sealed, None) == b"a large blob"
    wrapped_only = await vault.http.post(
        "/internal/transit/keys/files/datakey",
        json={"include_plaintext": False, "algorithm": "sm4-gcm"},
        headers=vault.service("identity"),
    )
    assert wrapped_only.json()["plaintext"] is None
    assert wrapped_only.json()["ciphertext"].startswith("vault:v1:")
