"""The README stays an entry point, and the generated configuration reference stays current."""

from __future__ import annotations

import re
from pathlib import Path

from ops.settings_doc import BEGIN, END, REFERENCE, render

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Documents other parts of the suite write; the README links to them whether or not they exist yet.
WRITTEN_ELSEWHERE = frozenset(
    {
        "docs/deploy.md",
        "docs/risk.md",
        "docs/risk-model.md",
        "docs/incidents.md",
        "docs/governance.md",
        "docs/security.md",
    }
)


def test_configuration_reference_is_up_to_date() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    documented = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert documented == render(), "run `uv run python -m ops.settings_doc --write` (it rewrites docs/configuration.md)"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text
    assert "make test" in text


def test_readme_is_an_entry_point_not_a_manual() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert BEGIN not in text, "the settings reference lives in docs/configuration.md"
    assert "| setting | default |" not in text, "no hand-written settings tables"


def test_every_document_the_readme_links_exists() -> None:
    text = README.read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]*)?\)", text))
    assert "docs/configuration.md" in links
    missing = sorted(link for link in links - WRITTEN_ELSEWHERE if not (ROOT / link).exists())
    assert not missing, missing
