"""The `dialer` command as an operator types it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import dialer

THREE_MISTAKES = """\
ami:
  username: outreach
  secret_file: secret
  port: fifteen-thousand
api:
  token_file: secret
  listen: 0.0.0.0
campaigns:
  refusal:
    kind: refusal_callback
    channel: Local/{number}@customers
    ring_timeout_s: 10
"""


def test_check_config_accepts_the_example() -> None:
    result = dialer("check-config", "config/example.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config/example.yaml: OK")


def test_check_config_prints_each_of_three_mistakes_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    config = tmp_path / "site.yaml"
    config.write_text(THREE_MISTAKES)
    result = dialer("check-config", str(config))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert re.fullmatch(rf"{config}:4: ami\.port: .*integer.*", lines[0])
    assert lines[1] == f"{config}:7: api.listen: unknown key"
    assert re.fullmatch(rf"{config}:12: campaigns\.refusal\.ring_timeout_s: .*15.*", lines[2])
    assert "Traceback" not in result.stderr


def test_check_config_on_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    result = dialer("check-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert str(tmp_path / "nope.yaml") in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_a_broken_config_exits_2_without_starting(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("ami: [unclosed\n")
    result = dialer("run", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}:")
    assert "Traceback" not in result.stderr
