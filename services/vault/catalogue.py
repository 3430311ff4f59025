"""The field catalogue: every field type the vault stores, its data class, masking rule and lookup.

Data classes follow the seed (M3.1): core identity, transaction,
authentication and operation data. Each class says who may read it unmasked;
each field type says how it is normalised (so the blind index matches however
a caller formats the value), how it is masked, and whether it can be looked
up by exact match.

Masking never reveals more than the rule's fixed parts: a card is always
``6222 **** **** 1234`` whatever its length, an authentication value is
always ``******``, so a masked value does not leak the length either where
the length itself would help a guess.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from kit.phone import InvalidPhoneNumber, parse_phone

MAX_VALUE_CHARS = 4096
FIXED_MASK = "******"


class DataClass(enum.StrEnum):
    core_identity = "core_identity"
    transaction = "transaction"
    authentication = "authentication"
    operation = "operation"


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    data_class: DataClass
    description: str
    #: Staff may ever see these values unmasked (with ``vault:decrypt``).
    staff_unmasked: bool
    #: An unmasked staff read of this class also needs an approval.
    approval_required: bool


CLASS_POLICIES: dict[DataClass, ClassPolicy] = {
    DataClass.core_identity: ClassPolicy(
        DataClass.core_identity,
        "Who the customer is: name, national ID or other identity document, phone, e-mail, address, birth date.",
        staff_unmasked=True,
        approval_required=False,
    ),
    DataClass.transaction: ClassPolicy(
        DataClass.transaction,
        "Money movements and the instruments behind them: card and account numbers, payment notes.",
        staff_unmasked=True,
        approval_required=True,
    ),
    DataClass.authentication: ClassPolicy(
        DataClass.authentication,
        "Secrets that prove identity: security answers, biometric templates. Never shown to staff.",
        staff_unmasked=False,
        approval_required=True,
    ),
    DataClass.operation: ClassPolicy(
        DataClass.operation,
        "Traces of use: device ids, IP addresses, login locations.",
        staff_unmasked=True,
        approval_required=False,
    ),
}


class InvalidFieldValue(ValueError):
    """The value does not fit its field type (the message never contains the value)."""


Normaliser = Callable[[str], str]
Masker = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class FieldType:
    name: str
    data_class: DataClass
    normalise: Normaliser
    mask: Masker
    indexable: bool
    description: str
    example: str
    example_masked: str


# --- normalisers --------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def national_id_check_char(first17: str) -> str:
    """GB 11643-1999 check character of the first 17 digits of a resident ID."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _strip(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def _no_control(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise InvalidFieldValue("control characters are not allowed")
    return value


def normalise_text(value: str) -> str:
    value = _no_control(_strip(value))
    if not value:
        raise InvalidFieldValue("the value is empty")
    return value


def normalise_national_id(value: str) -> str:
    compact = re.sub(r"[\s-]", "", value).upper()
    if not re.fullmatch(r"\d{17}[\dX]", compact):
        raise InvalidFieldValue("a national ID has 17 digits and a check digit or X")
    if national_id_check_char(compact[:17]) != compact[17]:
        raise InvalidFieldValue("the national ID check digit does not match")
    return compact


def normalise_id_document(value: str) -> str:
    """A passport, travel-permit, residence-card or other document number: letters and digits only.

    Full-width characters (typed on a Chinese keyboard) fold to ASCII, spaces
    and hyphens go, letters are upper-cased: ``e 1234-5678`` and
    ``Ｅ12345678`` index like ``E12345678``. No checksum: the documents this
    type holds follow no single scheme.
    """
    compact = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", value)).upper()
    if not re.fullmatch(r"[A-Z0-9]{5,20}", compact):
        raise InvalidFieldValue("a document number has 5 to 20 letters and digits")
    return compact


def normalise_phone(value: str) -> str:
    """A mainland mobile as its 11 digits (so existing blind indexes keep matching), any other number in
    E.164 (:func:`kit.phone.parse_phone`: identity applies the same rule)."""
    try:
        return parse_phone(value)
    except InvalidPhoneNumber as exc:
        raise InvalidFieldValue(str(exc)) from exc


def normalise_card(value: str) -> str:
    compact = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{12,19}", compact):
        raise InvalidFieldValue("a card number has 12 to 19 digits")
    return compact


def normalise_account(value: str) -> str:
    compact = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{8,34}", compact):
        raise InvalidFieldValue("an account number has 8 to 34 digits")
    return compact


def normalise_email(value: str) -> str:
    compact = _strip(value)
    local, at, domain = compact.rpartition("@")
    if not at or not local or "." not in domain or re.search(r"\s", compact) or len(compact) > 254:
        raise InvalidFieldValue("not an e-mail address")
    # The domain is case-insensitive; the local part is kept as written.
    return f"{local}@{domain.lower()}"


def normalise_date(value: str) -> str:
    try:
        return dt.date.fromisoformat(_strip(value)).isoformat()
    except ValueError as exc:
        raise InvalidFieldValue("a date is written YYYY-MM-DD") from exc


def normalise_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(_strip(value)))
    except ValueError as exc:
        raise InvalidFieldValue("not an IP address") from exc


# --- masks --------------------------------------------------------------------------------


def mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    """Keep ``keep_start`` leading and ``keep_end`` trailing characters, star the rest."""
    if len(value) <= keep_start + keep_end:
        # Too short to show both ends without showing (nearly) all of it.
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]


def mask_national_id(value: str) -> str:
    return mask_middle(value, 3, 4)


def mask_id_document(value: str) -> str:
    """First character + fixed stars + the last 3 (the last 1 under 8 characters): the length is not shown."""
    return value[:1] + "*****" + value[-3:] if len(value) >= 8 else value[:1] + "*****" + value[-1:]


def mask_phone(value: str) -> str:
    """A mainland mobile ``138****5678``; an international number ``+44****0958``.

    An international number shows ``+``, two digits (its country code or the
    start of it) and at most the last 4, with a fixed run of stars: it never
    shows more digits than a mainland mask (7) and always hides at least 4.
    """
    if not value.startswith("+"):
        return mask_middle(value, 3, 4)
    digits = value[1:]
    shown_end = min(4, len(digits) - 6)
    return "+" + digits[:2] + "****" + digits[-shown_end:]


def mask_card(value: str) -> str:
    return f"{value[:4]} **** **** {value[-4:]}"


def mask_account(value: str) -> str:
    return f"**** {value[-4:]}"


def mask_name(value: str) -> str:
    return value[0] + "*" * (len(value) - 1) if len(value) > 1 else "*"


def mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[0]}***@{domain}"


def mask_address(value: str) -> str:
    return value[:6] + "****" if len(value) > 6 else value[:1] + "****"


def mask_birth_date(value: str) -> str:
    return value[:4] + "-**-**"


def mask_ip(value: str) -> str:
    address = ipaddress.ip_address(value)
    if address.version == 4:
        a, b, _, _ = value.split(".")
        return f"{a}.{b}.*.*"
    groups = address.exploded.split(":")
    return ":".join(groups[:2]) + ":*:*:*:*:*:*"


def mask_device(value: str) -> str:
    return value[:4] + "****" if len(value) > 4 else "****"


def mask_location(value: str) -> str:
    return value[:2] + "**" if len(value) > 2 else "**"


def mask_fixed(_value: str) -> str:
    return FIXED_MASK


# --- the catalogue -----------------------------------------------------------------------

_TYPES = (
    FieldType("name", DataClass.core_identity, normalise_text, mask_name, False, "Full name.", "张三", "张*"),
    FieldType(
        "national_id",
        DataClass.core_identity,
        normalise_national_id,
        mask_national_id,
        True,
        "Resident identity card number (GB 11643, checksum verified).",
        "11010519491231002X",
        "110***********002X",
    ),
    FieldType(
        "id_document",
        DataClass.core_identity,
        normalise_id_document,
        mask_id_document,
        True,
        (
            "Identity-document number other than the resident card: passport, Hong Kong/Macau/Taiwan "
            "travel permit, foreign permanent residence card, other (5-20 letters and digits)."
        ),
        "E12345678",
        "E*****678",
    ),
    FieldType(
        "phone",
        DataClass.core_identity,
        normalise_phone,
        mask_phone,
        True,
        "Phone number: a mainland mobile (kept as its 11 digits) or an international one in E.164.",
        "13812345678",
        "138****5678",
    ),
    FieldType(
        "email",
        DataClass.core_identity,
        normalise_email,
        mask_email,
        True,
        "E-mail address.",
        "zhang.san@example.com",
        "z***@example.com",
    ),
    FieldType(
        "address",
        DataClass.core_identity,
        normalise_text,
        mask_address,
        False,
        "Postal address.",
        "北京市朝阳区建国路88号",
        "北京市朝阳区****",
    ),
    FieldType(
        "birth_date",
        DataClass.core_identity,
        normalise_date,
        mask_birth_date,
        False,
        "Date of birth (YYYY-MM-DD).",
        "1990-05-17",
        "1990-**-**",
    ),
    FieldType(
        "bank_card",
        DataClass.transaction,
        normalise_card,
        mask_card,
        True,
        "Payment card number (PAN).",
        "6222021234561234",
        "6222 **** **** 1234",
    ),
    FieldType(
        "account_number",
        DataClass.transaction,
        normalise_account,
        mask_account,
        True,
        "Bank account number.",
        "6214830012345678",
        "**** 5678",
    ),
    FieldType(
        "transaction_note",
        DataClass.transaction,
        normalise_text,
        mask_fixed,
        False,
        "Free text attached to a payment.",
        "房租 11月",
        FIXED_MASK,
    ),
    FieldType(
        "security_answer",
        DataClass.authentication,
        normalise_text,
        mask_fixed,
        False,
        "Answer to a security question.",
        "my first school",
        FIXED_MASK,
    ),
    FieldType(
        "biometric_template",
        DataClass.authentication,
        normalise_text,
        mask_fixed,
        False,
        "Encoded biometric template (base64).",
        "AAECAwQ=",
        FIXED_MASK,
    ),
    FieldType(
        "device_id",
        DataClass.operation,
        normalise_text,
        mask_device,
        False,
        "Device fingerprint or id.",
        "a1b2c3d4e5f6",
        "a1b2****",
    ),
    FieldType(
        "ip_address",
        DataClass.operation,
        normalise_ip,
        mask_ip,
        False,
        "IPv4 or IPv6 address.",
        "192.168.10.23",
        "192.168.*.*",
    ),
    FieldType(
        "login_location",
        DataClass.operation,
        normalise_text,
        mask_location,
        False,
        "Where a login came from (city, region).",
        "上海市浦东新区",
        "上海**",
    ),
)

FIELD_TYPES: dict[str, FieldType] = {t.name: t for t in _TYPES}


def field_type(name: str) -> FieldType:
    try:
        return FIELD_TYPES[name]
    except KeyError as exc:
        raise InvalidFieldValue(f"unknown field {name!r}") from exc


def prepare(name: str, value: str) -> tuple[FieldType, str]:
    """Validate and normalise one value of field ``name``."""
    spec = field_type(name)
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidFieldValue(f"{name} is longer than {MAX_VALUE_CHARS} characters")
    return spec, spec.normalise(value)
