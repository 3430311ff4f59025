"""Phone numbers: the one rule identity and the vault both apply.

A mainland mobile (11 digits, 13-19, optionally written with +86 or 0086)
comes back as its 11 digits; any other number must be written with ``+`` or
``00`` and a country code, and comes back in E.164 (8 to 15 digits). A bare
digit string that is not a mainland mobile could belong to any country, so it
is refused rather than guessed. Identity indexes what the vault stores, so a
number one of them accepts and the other refuses would be a registration that
fails halfway; hence one module.
"""

from __future__ import annotations

import re

_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")
_INTERNATIONAL = re.compile(r"(?:\+|00)([1-9]\d{7,14})")
#: +86 then 1[1-9]: a mainland mobile with a digit too many or too few (only Beijing's 10 starts with 1).
_MAINLAND_MOBILE_TYPO = re.compile(r"861[1-9]")

RULE = (
    "a phone number is a mainland mobile (11 digits starting 13-19, optionally +86) "
    "or +<country code><number> (8 to 15 digits)"
)


class InvalidPhoneNumber(ValueError):
    """Neither form; the message states the rule and never repeats the value."""

    def __init__(self) -> None:
        super().__init__(RULE)


def parse_phone(value: str) -> str:
    """``13812345678`` for a mainland mobile, ``+442079460958`` for any other number.

    ``+86 138-1234-5678``, ``0086 13812345678`` and ``13812345678`` are all
    ``13812345678``; ``+44 20 7946 0958`` and ``0044 20 7946 0958`` are
    ``+442079460958``; a mainland landline is E.164 too (``+861065529988``).
    """
    compact = re.sub(r"[\s().-]", "", value)
    domestic = re.sub(r"^(\+86|0086)", "", compact)
    if _MAINLAND_MOBILE.fullmatch(domestic):
        return domestic
    international = _INTERNATIONAL.fullmatch(compact)
    if international is None or _MAINLAND_MOBILE_TYPO.match(international.group(1)):
        raise InvalidPhoneNumber()
    return "+" + international.group(1)


def e164(value: str) -> str:
    """Every number in E.164, a mainland mobile with +86 (:func:`parse_phone`'s rule)."""
    parsed = parse_phone(value)
    return parsed if parsed.startswith("+") else "+86" + parsed
