"""The configuration reference (every setting, its variable and default) as Markdown.

``python -m ops.settings_doc`` prints the tables that docs/configuration.md
holds; ``python -m ops.settings_doc --write`` puts them there in place. A test
(tests/ops/test_readme.py) keeps the two in step.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from kit.settings import SUITE_ENV_PREFIX, ServiceSettings, SuiteSettings
from ops.database import ROOT, SERVICES

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"


def _settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    found: list[tuple[str, type[BaseSettings]]] = []
    for name in ("gateway", *SERVICES):
        module = importlib.import_module("gateway.config" if name == "gateway" else f"services.{name}.config")
        cls = next(
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, SuiteSettings)
            and obj not in (SuiteSettings, ServiceSettings)
            and obj.__module__ == module.__name__
        )
        found.append((name, cls))
    return found


def _default(field: Any) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        return "*(secret; development default only)*"
    if value is None:
        return "*(unset)*"
    if isinstance(value, Path):
        # Relative to the checkout, so the reference does not depend on where it lives.
        value = value.resolve().relative_to(ROOT) if value.resolve().is_relative_to(ROOT) else value
    text = str(value.value if hasattr(value, "value") else value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        text = ", ".join(str(v) for v in value) if not isinstance(value, dict) else str(value)
    return f"`{text}`" if text else "*(empty)*"


def _row(variable: str, field: Any) -> str:
    description = (field.description or "").replace("|", "\\|").replace("\n", " ")
    return f"| `{variable}` | {_default(field)} | {description} |"


def render() -> str:
    lines = [BEGIN, "", "Settings every process shares (also settable once for all with the `SUITE_` prefix;", ""]
    lines[-2] += " `<P>` is the process prefix: `GATEWAY`, `IDENTITY`, `PERMISSIONS`, `VAULT`, `RISK`, `INCIDENTS`):"
    lines += ["| variable | default | meaning |", "|---|---|---|"]
    common = ServiceSettings.model_fields
    for name, field in common.items():
        scope = "" if name in SuiteSettings.model_fields else " *(services only)*"
        row = _row(f"<P>_{name.upper()}, {SUITE_ENV_PREFIX}{name.upper()}", field)
        lines.append(row[: row.rfind(" |")] + scope + " |")
    for service, cls in _settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        own = {k: v for k, v in cls.model_fields.items() if k not in common}
        lines += ["", f"**{service}** (prefix `{prefix}`)", ""]
        if not own:
            lines.append("No settings beyond the shared ones.")
            continue
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        lines += [_row(f"{prefix}{key.upper()}", field) for key, field in own.items()]
    lines += ["", END]
    return "\n".join(lines)


#: The document that holds the generated reference, between BEGIN and END.
REFERENCE = ROOT / "docs" / "configuration.md"


def write(path: Path = REFERENCE) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index(BEGIN)] + render() + text[text.index(END) + len(END) :], encoding="utf-8")


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv[1:]:
        write()
    else:
        print(render())
