"""Dependencies point one way: dialer -> notifiers, and only the adapters touch the libraries."""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Which of our modules may import which third-party client library (DESIGN.md, STYLE.md).
ADAPTERS = {
    "panoramisk": {"dialer/ami.py"},
    "twilio": {"notifiers/twilio.py"},
    "tenacity": {"notifiers/retry.py"},
    # HTTP routes live in api.py and the features' *_api.py modules (and the status page's).
    "aiohttp": {
        "dialer/api.py",
        "dialer/*_api.py",
        "dialer/app.py",
        "dialer/status_page.py",
        "notifiers/twilio.py",
        "notifiers/http.py",
    },
    # SQL lives in the store modules: store.py, *_store.py and contacts.py.
    "sqlalchemy": {
        "dialer/store.py",
        "dialer/*_store.py",
        "dialer/contacts.py",
        "dialer/config.py",
        "dialer/migrations/*",
    },
    "alembic": {"dialer/store.py", "dialer/migrations/*"},
    "prometheus_client": {"dialer/metrics.py"},
}
# Pure logic: standard library (and pydantic-free) only, so it is testable without any I/O.
PURE = [
    "dialer/outcomes.py",
    "dialer/windows.py",
    "dialer/pacing.py",
    "dialer/ami_wire.py",
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_notifiers_never_import_the_daemon() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in sources("notifiers")
        if any(name.split(".")[0] == "dialer" for name in imported_modules(path))
    ]
    assert offenders == []


def test_only_the_adapter_modules_import_client_libraries() -> None:
    offenders = []
    for path in sources("dialer") + sources("notifiers"):
        relative = str(path.relative_to(REPO))
        for name in imported_modules(path):
            allowed = ADAPTERS.get(name.split(".")[0])
            if allowed is not None and not any(fnmatch(relative, rule) for rule in allowed):
                offenders.append(f"{relative} imports {name}")
    assert offenders == []


def test_pure_modules_import_nothing_but_the_standard_library_and_each_other() -> None:
    import sys

    offenders = []
    for relative in PURE:
        for name in imported_modules(REPO / relative):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "dialer":
                offenders.append(f"{relative} imports {name}")
    assert offenders == []
