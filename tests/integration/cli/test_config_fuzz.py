"""`dialer check-config` on `config/example.yaml` mutated at random: lines deleted, values
replaced by other types, tags, aliases (an alias bomb among them), control characters and huge
numbers. Whatever the file, it exits 0 or 2, and every line it prints for an error is located
(`PATH:LINE: `), in bounded time and memory. In-process (`check_config`) for speed, and a few
hostile files through the real command under a memory limit."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.cli.main import check_config
from tests.support import REPO

EXAMPLE = (REPO / "config" / "example.yaml").read_text(encoding="utf-8")
LINES = EXAMPLE.splitlines()
VALUE_LINES = [i for i, line in enumerate(LINES) if re.match(r"^\s*[\w\"-]+:\s*\S", line)]
MEMORY_LIMIT_BYTES = 1024 * 1024 * 1024

hostile_values = st.sampled_from(
    [
        "[1, 2]",
        "{a: 1}",
        "true",
        "!!bool yes",
        "9" * 5000,
        "-" + "9" * 30,
        "1e999",
        ".inf",
        ".nan",
        "1e12",
        "0x",
        "!!int abc",
        "!!float x",
        "!!bool maybe",
        "!!timestamp x",
        "2025-02-30",
        "!!binary '%%%'",
        "!foo bar",
        "!!python/object:os.system x",
        "!!set {a}",
        "*undefined",
        "&anchor value",
        '"\\0"',
        '"a\\x1bb"',
        '"\\u2028"',
        "'${UNSET_VARIABLE}'",
        "'${'",
        "[" * 200 + "]" * 200,
        "",
        "~",
    ]
) | st.text(max_size=20)

control_characters = st.sampled_from(["\x00", "\x1b", "\x07", "\x7f", "\x85", "\u2028", "\t", "\r"])

ALIAS_BOMB = "\n".join(
    ["b0: &b0 [x, x, x, x, x, x, x, x, x]"]
    + [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, 9)]
)


@st.composite
def mutated_examples(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["delete", "value", "control", "insert", "duplicate", "bomb"]))
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        if kind == "delete":
            del lines[index]
        elif kind == "value":
            at = draw(st.sampled_from(VALUE_LINES)) if VALUE_LINES else index
            if at < len(lines):
                key, _, _ = lines[at].partition(":")
                lines[at] = f"{key}: {draw(hostile_values)}"
        elif kind == "control":
            line = lines[index]
            cut = draw(st.integers(min_value=0, max_value=len(line)))
            lines[index] = line[:cut] + draw(control_characters) + line[cut:]
        elif kind == "insert":
            indent = " " * draw(st.sampled_from([0, 2, 4]))
            key = draw(st.sampled_from(["port", "x", "priority", "<<", "channel", "1"]))
            lines.insert(index, f"{indent}{key}: {draw(hostile_values)}")
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif draw(st.integers(min_value=0, max_value=9)) == 0:  # a rare, costly one
            lines.append(ALIAS_BOMB)
    return "\n".join(lines) + "\n"


def config_dir(tmp_path: Path) -> Path:
    """A copy of config/ next to the lab secrets the example names (../lab/...)."""
    lab = tmp_path / "lab"
    if not lab.exists():
        lab.mkdir()
        for name in ("ami-secret", "api-token", "webhook-secret"):
            shutil.copy(REPO / "lab" / name, lab / name)
        (tmp_path / "config").mkdir()
    return tmp_path / "config"


def assert_every_error_is_located(path: Path, stderr: str) -> None:
    located = re.compile(rf"^{re.escape(str(path))}:\d+: ")
    for line in stderr.split("\n")[:-1]:  # no other line breaks: each error is one line
        assert located.match(line), repr(line)


@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=mutated_examples())
def test_a_mutated_example_is_valid_or_every_error_is_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = config_dir(tmp_path) / "site.yaml"
    path.write_text(text, encoding="utf-8")
    status = check_config(str(path))
    _, err = capsys.readouterr()
    assert status in (0, 2)
    assert (status == 0) == (err == ""), err[:500]
    assert_every_error_is_located(path, err)
    assert peak_rss_bytes() < RSS_AT_START + 300 * 1024 * 1024  # never a blown-up file


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


RSS_AT_START = peak_rss_bytes()


def test_the_unmutated_example_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_dir(tmp_path) / "site.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert check_config(str(path)) == 0
    assert "OK" in capsys.readouterr().out


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("alias-bomb", EXAMPLE + ALIAS_BOMB + "\n"),
        ("deep-nesting", EXAMPLE + "x: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("nul", EXAMPLE.replace("username: outreach", "username: out\x00reach")),
    ],
)
def test_the_real_command_refuses_a_hostile_file_with_located_errors_within_bounds(
    tmp_path: Path, name: str, text: str
) -> None:
    path = config_dir(tmp_path) / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "dialer", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
        preexec_fn=limit_memory,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr
    assert_every_error_is_located(path, result.stderr)
