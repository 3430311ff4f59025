"""Normalisation and validation of real-name data (national ID, phone, email)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from email_validator import EmailNotValidError, validate_email

from kit.phone import InvalidPhoneNumber, e164

_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK = "10X98765432"
_ID_PATTERN = re.compile(r"^[1-9]\d{16}[\dX]$")


def iso7064_mod11_2_check(body: str) -> str:
    """The check character of the first 17 digits of a mainland resident ID (GB 11643, ISO 7064 MOD 11-2)."""
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def valid_mainland_id(number: str) -> bool:
    """18 characters, a real birth date, and the ISO 7064 MOD 11-2 check character."""
    number = number.strip().upper()
    if not _ID_PATTERN.match(number):
        return False
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if birth.year < 1900 or birth > date.today():
        return False
    return iso7064_mod11_2_check(number[:17]) == number[17]


def normalise_national_id(id_type: str, number: str) -> str | None:
    """The canonical form, or None when the number is not valid for its type."""
    if id_type == "cn_resident":
        cleaned = re.sub(r"\s+", "", number).upper()
        return cleaned if valid_mainland_id(cleaned) else None
    # Passports and other documents: letters and digits, no check digit to verify. The same form as the
    # vault's ``id_document`` (full-width folded, spaces and hyphens dropped) so identity's index and the
    # stored value agree however the number was typed.
    cleaned = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", number)).upper()
    return cleaned if re.fullmatch(r"[A-Z0-9]{5,20}", cleaned) else None


def normalise_phone(phone: str) -> str | None:
    """E.164, a mainland mobile with +86; None for what the vault would refuse too (the kit's one rule)."""
    try:
        return e164(phone)
    except InvalidPhoneNumber:
        return None


def normalise_email(email: str) -> str | None:
    try:
        return validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None
