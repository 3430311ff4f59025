"""The README's configuration reference lists every setting with its current default."""

from __future__ import annotations

from pathlib import Path

from ops.settings_doc import BEGIN, END, render

README = Path(__file__).resolve().parents[2] / "README.md"


def test_configuration_reference_is_up_to_date() -> None:
    text = README.read_text(encoding="utf-8")
    documented = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert documented == render(), "run `uv run python -m ops.settings_doc` and paste it into README.md"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text
    assert "make test" in text
