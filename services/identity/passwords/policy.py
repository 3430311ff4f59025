"""The password policy: length, character classes, strength (zxcvbn), history."""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

from zxcvbn import zxcvbn

from services.identity.config import IdentitySettings

_CLASSES: dict[str, Callable[[str], bool]] = {
    "upper": lambda c: c.isupper(),
    "lower": lambda c: c.islower(),
    "digit": lambda c: c.isdigit(),
    "special": lambda c: (not c.isalnum() and not c.isspace()) or c in string.punctuation,
}


def policy_violations(settings: IdentitySettings, password: str, user_inputs: Sequence[str] = ()) -> list[str]:
    """The rules ``password`` breaks (empty when it is acceptable); never the password itself."""
    problems: list[str] = []
    if len(password) < settings.password_min_length:
        problems.append(f"at least {settings.password_min_length} characters")
    if len(password) > settings.password_max_length:
        problems.append(f"at most {settings.password_max_length} characters")
        return problems  # do not feed a huge input to zxcvbn
    for name in settings.password_require_classes:
        test = _CLASSES.get(name)
        if test is not None and not any(test(c) for c in password):
            problems.append(f"a {name} character" if name != "upper" else "an upper-case character")
    # zxcvbn knows common passwords, keyboard walks, dates and leetspeak; the
    # user's own data (name, phone, email) counts as guessable.
    inputs = [u for u in user_inputs if u]
    result = zxcvbn(password[:100], user_inputs=inputs)
    if int(result["score"]) < settings.password_min_zxcvbn_score:
        problems.append("not a common or easily guessed password")
    return problems
