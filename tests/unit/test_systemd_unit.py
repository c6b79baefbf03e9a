"""The example systemd unit runs commands the CLI knows, reloads with SIGHUP, and waits longer
than the shutdown grace before killing."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from dialer.cli.main import _parser
from dialer.config import ApiSettings

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "config" / "systemd" / "pbx-outreach.service"


def service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def dialer_argv(line: str) -> list[str]:
    executable, *arguments = shlex.split(line)
    assert Path(executable).name == "dialer"
    return arguments


def test_start_runs_the_daemon_on_the_config_the_check_validates() -> None:
    service = service_section()
    run = _parser().parse_args(dialer_argv(service["ExecStart"]))
    check = _parser().parse_args(dialer_argv(service["ExecStartPre"]))
    assert (run.command, check.command) == ("run", "check-config")
    assert run.config == check.path == "/etc/pbx-outreach/config.yaml"


def test_reload_is_sighup_and_stop_is_sigterm() -> None:
    service = service_section()
    assert shlex.split(service["ExecReload"])[1:] == ["-HUP", "$MAINPID"]
    assert service["KillSignal"] == "SIGTERM"


def test_systemd_waits_longer_than_the_shutdown_grace() -> None:
    default_grace_s = ApiSettings.model_fields["shutdown_grace_s"].default
    assert float(service_section()["TimeoutStopSec"]) > default_grace_s


def test_the_state_directory_is_writable_and_the_user_is_not_root() -> None:
    service = service_section()
    assert service["User"] not in {"root", "0"}
    assert "/var/lib/pbx-outreach" in service["ReadWritePaths"].split()
    assert service["WorkingDirectory"] == "/var/lib/pbx-outreach"
