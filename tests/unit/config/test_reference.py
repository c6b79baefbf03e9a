"""docs/config-reference.md is generated from the models: the docs and the code cannot drift."""

from __future__ import annotations

from pathlib import Path

from dialer.config import Settings
from dialer.config.reference import render_reference

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "config-reference.md"


def test_the_committed_reference_matches_the_models() -> None:
    assert REFERENCE.read_text() == render_reference(), "run `make docs` and commit the result"


def test_every_top_level_key_has_a_section_or_a_row() -> None:
    rendered = render_reference()
    for key in Settings.model_fields:
        assert f"| `{key}` |" in rendered
    assert "## `ami`" in rendered
    assert "## `notifications.providers.<name>` (type: twilio)" in rendered
