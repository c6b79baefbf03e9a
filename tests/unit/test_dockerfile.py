"""The Dockerfile ships what exists and runs the command the CLI knows (no Docker engine here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dialer.cli.main import _parser

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """Arguments of every `name` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.upper().startswith(name + " ")
    ]


def test_every_path_copied_from_the_context_exists() -> None:
    sources = []
    for arguments in instructions("COPY"):
        if arguments.startswith("--from="):
            continue
        *paths, _destination = arguments.split()
        sources.extend(paths)
    assert sources, "the Dockerfile copies nothing from the build context"
    missing = [path for path in sources if not (REPO / path).exists()]
    assert missing == []


def test_the_entrypoint_and_command_are_a_valid_dialer_command() -> None:
    [entrypoint] = instructions("ENTRYPOINT")
    [command] = instructions("CMD")
    argv = json.loads(entrypoint) + json.loads(command)
    assert argv[0] == "dialer"
    parsed = _parser().parse_args(argv[1:])
    assert parsed.command == "run"
    assert parsed.config == "/etc/pbx-outreach/config.yaml"


def test_the_image_runs_as_a_non_root_user() -> None:
    [user] = instructions("USER")
    assert user.split(":")[0] not in {"0", "root"}


def test_the_healthcheck_asks_healthz() -> None:
    [healthcheck] = instructions("HEALTHCHECK")
    assert "/healthz" in healthcheck


def test_the_api_listens_on_all_interfaces_only_inside_the_container() -> None:
    example = (REPO / "config" / "example.yaml").read_text()
    assert "host: ${PBX_OUTREACH_API_HOST:-127.0.0.1}" in example
    assert "PBX_OUTREACH_API_HOST=0.0.0.0" in DOCKERFILE
