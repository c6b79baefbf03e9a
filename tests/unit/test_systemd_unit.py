"""The example systemd units (one daemon, and the template for several workers) run commands the
CLI knows, reload with SIGHUP, and wait longer than the shutdown grace before killing."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from dialer.cli.main import _parser
from dialer.config import ApiSettings, load_settings

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "config" / "systemd"
SINGLE = "pbx-outreach.service"
TEMPLATE = "pbx-outreach@.service"
CONFIG_PATHS = {SINGLE: "/etc/pbx-outreach/config.yaml", TEMPLATE: "/etc/pbx-outreach/%i.yaml"}

each_unit = pytest.mark.parametrize("unit", [SINGLE, TEMPLATE])


def service_section(unit: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / unit).read_text())
    return parser["Service"]


def dialer_argv(line: str) -> list[str]:
    executable, *arguments = shlex.split(line)
    assert Path(executable).name == "dialer"
    return arguments


@each_unit
def test_start_runs_the_daemon_on_the_config_the_check_validates(unit: str) -> None:
    service = service_section(unit)
    run = _parser().parse_args(dialer_argv(service["ExecStart"]))
    check = _parser().parse_args(dialer_argv(service["ExecStartPre"]))
    assert (run.command, check.command) == ("run", "check-config")
    assert run.config == check.path == CONFIG_PATHS[unit]


@each_unit
def test_reload_is_sighup_and_stop_is_sigterm(unit: str) -> None:
    service = service_section(unit)
    assert shlex.split(service["ExecReload"])[1:] == ["-HUP", "$MAINPID"]
    assert service["KillSignal"] == "SIGTERM"


@each_unit
def test_systemd_waits_longer_than_the_shutdown_grace(unit: str) -> None:
    default_grace_s = ApiSettings.model_fields["shutdown_grace_s"].default
    assert float(service_section(unit)["TimeoutStopSec"]) > default_grace_s


@each_unit
def test_the_state_directory_is_writable_and_the_user_is_not_root(unit: str) -> None:
    service = service_section(unit)
    assert service["User"] not in {"root", "0"}
    assert "/var/lib/pbx-outreach" in service["ReadWritePaths"].split()
    assert service["WorkingDirectory"] == "/var/lib/pbx-outreach"


def test_each_instance_of_the_template_is_a_worker_of_its_own_id(tmp_path: Path) -> None:
    service = service_section(TEMPLATE)
    name, value = service["Environment"].split("=", 1)
    assert value == "%H-%i"
    config = tmp_path / "dispatcher.yaml"
    example = (REPO / "config" / "example.yaml").read_text()
    config.write_text(example.replace("../", f"{REPO}/") + WORKER_SECTION)
    settings = load_settings(config, environ={name: "host1-dispatcher"})
    assert (settings.worker.id, settings.worker.roles) == ("host1-dispatcher", ("dispatcher",))


WORKER_SECTION = """
worker:
  id: ${PBX_OUTREACH_WORKER_ID}
  roles: [dispatcher]
"""
