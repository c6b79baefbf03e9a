"""The architecture as rules (docs/architecture.md): which package may import which, and which
libraries each may touch. A change that breaks one of them fails here."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Where each module of ours belongs (first match wins).
GROUPS = [
    ("dialer/calling/ports.py", "calling.ports"),
    ("dialer/messaging/ports.py", "messaging.ports"),
    ("dialer/calling/*", "calling"),
    ("dialer/messaging/*", "messaging"),
    ("dialer/pbx/*", "pbx"),
    ("dialer/store/*", "store"),
    ("dialer/http/*", "http"),
    ("dialer/cli/*", "cli"),
    ("dialer/config/*", "config"),
    ("dialer/app.py", "app"),
    ("dialer/daemon_reload.py", "app"),
    ("dialer/daemon_settings.py", "app"),
    ("dialer/__main__.py", "cli"),
    ("dialer/*.py", "shared"),
    ("notifiers/*", "notifiers"),
]
SHARED = {"shared"}
# group -> the groups of ours it may import (besides itself). The arrows point one way:
# edges (http, cli) -> core (calling, messaging) -> ports <- adapters (pbx, store).
MAY_IMPORT = {
    "shared": set(),
    "config": SHARED,
    "calling.ports": SHARED,
    "messaging.ports": SHARED,
    "calling": SHARED | {"config", "calling.ports"},
    "messaging": SHARED | {"config", "messaging.ports", "notifiers"},
    "pbx": SHARED | {"calling.ports"},
    "store": SHARED | {"calling.ports", "messaging.ports"},
    "http": SHARED
    | {"config", "calling", "calling.ports", "messaging", "messaging.ports", "store", "notifiers"},
    "cli": SHARED | {"config", "calling", "calling.ports", "messaging", "store", "app"},
    "app": SHARED
    | {
        "config",
        "calling",
        "calling.ports",
        "messaging",
        "messaging.ports",
        "pbx",
        "store",
        "http",
        "cli",
    },
    "notifiers": set(),
}
# What HTTP may read of the store without going through the core: the `Store` type and the
# read-only reports. (The CLI, like app.py, also builds the repositories it hands to the core.)
STORE_FOR_HTTP = {
    "dialer.store",
    "dialer.store.sms_reports",
    "dialer.store.campaign_reports",
    "dialer.store.timeline_reports",
    "dialer.store.trend_reports",
}
# Which groups may import which third-party library (the rest may import none of these).
LIBRARIES = {
    "panoramisk": {"pbx"},
    "sqlalchemy": {"store"},
    "alembic": {"store"},
    "asyncpg": {"store"},
    "aiosqlite": {"store"},
    "aiohttp": {"http", "app", "notifiers"},
    "twilio": {"notifiers"},
    "alibabacloud_dysmsapi20170525": {"notifiers"},
    "alibabacloud_tea_openapi": {"notifiers"},
    "Tea": {"notifiers"},
    "darabonba": {"notifiers"},
    "tencentcloud": {"notifiers"},
    "requests": {"notifiers"},
    "tenacity": {"notifiers"},
    "prometheus_client": {"shared"},
    "structlog": {"shared"},
    "ruamel": {"config"},
}
CORE = {"calling", "calling.ports", "messaging", "messaging.ports"}
CORE_FORBIDDEN_LIBRARIES = {"sqlalchemy", "aiohttp", "panoramisk", "twilio", "asyncpg", "aiosqlite"}
# Modules of pure logic: the standard library and other pure modules of ours only.
PURE = [
    "dialer/clock.py",
    "dialer/outcomes.py",
    "dialer/windows.py",
    "dialer/calling/classify.py",
    "dialer/calling/pacing.py",
    "dialer/calling/predictive.py",
    "dialer/calling/pacing_stats.py",
    "dialer/calling/abandon.py",
    "dialer/calling/ports.py",
    "dialer/calling/queues.py",
    "dialer/messaging/ports.py",
    "dialer/messaging/replies.py",
    "dialer/pbx/wire.py",
    "dialer/config/database_url.py",
]
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def group_of(path: Path) -> str:
    relative = str(path.relative_to(REPO))
    for pattern, group in GROUPS:
        if fnmatch(relative, pattern):
            return group
    raise AssertionError(f"{relative} belongs to no group: add it to GROUPS")


def imported_modules(path: Path) -> set[str]:
    """Absolute module names imported by `path`: for `from x import y`, x.y when that is a
    module of ours, else x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return names


def sources() -> list[Path]:
    found = sorted((REPO / "dialer").rglob("*.py")) + sorted((REPO / "notifiers").rglob("*.py"))
    return [path for path in found if "migrations" not in path.parts]


MODULES = {module_name(path): path for path in sources()}


def own_module(name: str) -> str | None:
    """The module of ours `name` is (or lies in), else None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def test_every_module_belongs_to_a_group() -> None:
    for path in sources():
        group_of(path)


def test_packages_import_only_what_the_arrows_allow() -> None:
    offenders = []
    for path in sources():
        group = group_of(path)
        for name in imported_modules(path):
            target = own_module(name)
            if target is None or target == module_name(path):
                continue
            target_group = group_of(MODULES[target])
            if target_group == group:
                continue
            if target_group not in MAY_IMPORT[group]:
                offenders.append(f"{path.relative_to(REPO)} ({group}) imports {target}")
            elif target_group == "store" and group == "http" and target not in STORE_FOR_HTTP:
                offenders.append(f"{path.relative_to(REPO)} writes through {target}")
    assert offenders == []


def test_the_store_imports_no_core_logic_only_the_ports() -> None:
    offenders = [
        f"{path.relative_to(REPO)} imports {target}"
        for path in sources()
        if group_of(path) == "store"
        for name in imported_modules(path)
        if (target := own_module(name)) is not None
        and group_of(MODULES[target]) in {"calling", "messaging", "config"}
    ]
    assert offenders == []


def test_only_their_adapters_import_the_client_libraries() -> None:
    offenders = []
    for path in sources():
        group = group_of(path)
        for name in imported_modules(path):
            allowed = LIBRARIES.get(name.split(".")[0])
            if allowed is not None and group not in allowed:
                offenders.append(f"{path.relative_to(REPO)} ({group}) imports {name}")
    assert offenders == []


def _closure(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        for nxt in graph[current]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _graph(*, packages_first: bool = True) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (and, with `packages_first`, its package,
    whose __init__ runs first)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        graph[name]
        for imported in imported_modules(path):
            target = own_module(imported)
            if target is not None and target != name:
                graph[name].add(target)
        parent = name.rpartition(".")[0]
        if packages_first and parent in MODULES:
            graph[name].add(parent)
    return graph


def test_the_core_reaches_no_io_library_even_through_other_modules() -> None:
    graph = _graph()
    offenders = []
    for name, path in MODULES.items():
        if group_of(path) not in CORE:
            continue
        for reached in {name} | _closure(name, graph):
            if group_of(MODULES[reached]) == "notifiers":
                continue  # sending a message is the notifiers' job (dialer -> notifiers)
            for library in imported_modules(MODULES[reached]):
                if library.split(".")[0] in CORE_FORBIDDEN_LIBRARIES:
                    offenders.append(f"{name} reaches {library} through {reached}")
    assert offenders == []


def test_there_is_no_import_cycle() -> None:
    graph = _graph(packages_first=False)
    cycles = sorted(name for name in graph if name in _closure(name, graph))
    assert cycles == []


def test_there_is_no_cycle_between_packages() -> None:
    groups: dict[str, set[str]] = defaultdict(set)
    for name, targets in _graph(packages_first=False).items():
        for target in targets:
            source, sink = group_of(MODULES[name]), group_of(MODULES[target])
            if source != sink:
                groups[source].add(sink)
    for sinks in list(groups.values()):
        for sink in sinks:
            groups[sink]
    cycles = sorted(group for group in groups if group in _closure(group, groups))
    assert cycles == []


@pytest.mark.parametrize("relative", PURE)
def test_pure_modules_import_nothing_but_the_standard_library_and_pure_modules(
    relative: str,
) -> None:
    pure = {module_name(REPO / path) for path in PURE}
    offenders = []
    for name in imported_modules(REPO / relative):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        target = own_module(name)
        if target not in pure:
            offenders.append(name)
    assert offenders == []


def test_no_module_is_longer_than_the_limit() -> None:
    too_long = {
        str(path.relative_to(REPO)): length
        for path in sources()
        if (length := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_the_kinds_and_the_providers_are_registered_once_each() -> None:
    from typing import get_args

    from dialer.config import KINDS, Provider
    from dialer.config.kinds import Campaign
    from dialer.messaging.providers import PROVIDERS

    union, *_ = get_args(Campaign)
    assert {model.model_fields["kind"].annotation for model in get_args(union)} == {
        model.model_fields["kind"].annotation for model in KINDS.values()
    }
    assert {get_args(model.model_fields["kind"].annotation)[0] for model in KINDS.values()} == set(
        KINDS
    )
    provider_union, *_ = get_args(Provider)
    provider_types = {
        get_args(model.model_fields["type"].annotation)[0] for model in get_args(provider_union)
    }
    assert provider_types == set(PROVIDERS)
