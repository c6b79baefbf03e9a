"""`notifiers` stands alone: no module of it imports the daemon (`dialer`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NOTIFIERS = Path(__file__).resolve().parents[2] / "notifiers"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(NOTIFIERS.glob("*.py")), ids=lambda p: p.name)
def test_no_notifiers_module_imports_dialer(path: Path) -> None:
    assert not {m for m in imported_modules(path) if m == "dialer" or m.startswith("dialer.")}
