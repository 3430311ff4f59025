"""identity's client of the vault, where customers' personal data lives.

identity keeps, per customer, only the id of one vault record (label
``profile``: name, national ID, phone, email) plus its own keyed HMAC
indexes of the login identifiers, so login and uniqueness checks never ask
the vault. Values are read from the vault at the moment they are needed,
each read naming a purpose from the vault's closed list (the vault logs it).

Every call goes through the gateway with identity's service token
(``kit.http.ServiceClient``). The vault being unreachable, slow or answering
something unexpected is a 503 problem (``upstream_unavailable``) for the
caller: nothing identity decides on is guessed.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from kit.errors import SuiteError
from kit.http import ServiceClient, UpstreamUnavailable

logger = logging.getLogger("identity.vault")

INTERNAL = "/v1/vault/internal"
PROFILE_LABEL = "profile"


def subject_path(subject_id: uuid.UUID) -> str:
    """The vault's crypto-shredding endpoint of one customer (idempotent DELETE, fit for the outbox)."""
    return f"{INTERNAL}/subjects/{subject_id}"


class Purpose(enum.StrEnum):
    """The purposes identity reads personal data for (members of the vault's closed list)."""

    #: codes and alerts sent to the holder
    customer_notification = "customer_notification"
    #: checks made while authenticating or setting a password (a password must not contain the phone)
    authentication = "authentication"
    #: a staff member looking at an account (masked)
    account_servicing = "account_servicing"


class PersonalDataGone(SuiteError):
    """The customer's data was crypto-shredded (account closed): it cannot be read any more."""

    status = 410
    code = "personal_data_destroyed"
    title = "The personal data of this account was destroyed"


class PersonalDataRefused(SuiteError):
    """The vault refused values identity sent (``errors`` name the fields, never the values)."""

    status = 400
    code = "invalid_personal_data"
    title = "Personal data not accepted"

    def __init__(self, fields: list[str]) -> None:
        super().__init__("not accepted: " + ", ".join(fields), fields=fields)
        self.fields = fields


@dataclass(frozen=True, slots=True)
class StoredRecord:
    id: uuid.UUID
    token: str


class VaultClient:
    """The vault's records API as identity uses it."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = await self.client.request(method, path, json=body)
        if response.status_code >= 500 or response.status_code in (401, 403, 404, 408, 429):
            # Outage, misconfiguration (identity not allowed, token refused) or an unknown record: nothing
            # the caller can fix; said as the vault being unavailable, with the status in the log only.
            logger.warning("vault answered %s to %s %s", response.status_code, method, path)
            raise UpstreamUnavailable("the personal-data vault is unavailable")
        return response

    async def store_profile(self, subject_id: uuid.UUID, fields: dict[str, str]) -> StoredRecord:
        response = await self._call(
            "POST", f"{INTERNAL}/records", {"subject_id": str(subject_id), "label": PROFILE_LABEL, "fields": fields}
        )
        body = _refusal_raised(response)
        if response.status_code != 201:
            raise UpstreamUnavailable(f"the vault did not store the record ({response.status_code})")
        return StoredRecord(id=uuid.UUID(str(body["id"])), token=str(body["token"]))

    async def update_fields(self, record_id: uuid.UUID, fields: dict[str, str]) -> None:
        response = await self._call("PATCH", f"{INTERNAL}/records/{record_id}", {"fields": fields})
        if response.status_code == 410:
            raise PersonalDataGone()
        _refusal_raised(response)
        if response.status_code != 200:
            raise UpstreamUnavailable(f"the vault did not update the record ({response.status_code})")

    async def read(
        self,
        record_id: uuid.UUID,
        fields: list[str],
        purpose: Purpose,
        *,
        unmasked: bool,
        reference: str | None = None,
    ) -> dict[str, str]:
        """The named fields the record holds (absent ones are left out), masked unless ``unmasked``."""
        request: dict[str, Any] = {"purpose": purpose.value, "fields": fields, "unmasked": unmasked}
        if reference:
            request["reference"] = reference
        response = await self._call("POST", f"{INTERNAL}/records/{record_id}/reads", request)
        if response.status_code == 410:
            raise PersonalDataGone()
        if response.status_code != 200:
            raise UpstreamUnavailable(f"the vault did not answer the read ({response.status_code})")
        records = _json(response).get("records") or [{}]
        return {name: str(field["value"]) for name, field in (records[0].get("fields") or {}).items()}

    async def shred_now(self, subject_id: uuid.UUID) -> bool:
        """Shred at once, best effort (undoing a registration that failed after its vault write)."""
        try:
            response = await self.client.request("DELETE", subject_path(subject_id))
        except UpstreamUnavailable:
            response = None
        if response is None or not response.is_success:
            logger.error("could not shred the vault subject of a failed registration %s", subject_id)
            return False
        return True


def _refusal_raised(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON body, after raising :class:`PersonalDataRefused` if the vault refused values."""
    body = _json(response)
    if response.status_code == 400 and body.get("code") == "invalid_field":
        raise PersonalDataRefused(sorted({str(e.get("field")) for e in body.get("errors", [])}))
    return body


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
