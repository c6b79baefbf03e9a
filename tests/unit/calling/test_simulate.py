"""`dialer simulate`: the campaign's real runner on the virtual clock against the simulated PBX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialer.calling.simulate import SimulationError, SimulationOptions, simulate
from dialer.cli.main import main
from dialer.config import Campaign, parse_settings
from dialer.config.values import time_range

CONFIG = """\
ami:
  username: o
  secret: ${AMI_SECRET}
api:
  token: ${API_TOKEN}
campaigns:
  proactive:
    kind: outbound
    channel: Local/{number}@customers
    agent_queue: sales
    max_concurrent_calls: 60
    max_calls_per_second: 10
    calling_windows: {mon: ["09:00-10:00"], tue: ["09:00-10:00"]}
    pacing: {mode: predictive, max_abandon_rate: 0.03}
  care:
    kind: vip
    channel: Local/{number}@customers
    agent_queue: vip
"""


def campaign(name: str = "proactive") -> Campaign:
    environ = {"AMI_SECRET": "s", "API_TOKEN": "t"}
    return parse_settings(CONFIG, source="c.yaml", base_dir=Path("."), environ=environ).campaigns[
        name
    ]


def test_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    options = SimulationOptions(agents=5, hours=0.5, seed=7)

    first = simulate("proactive", campaign(), options)
    again = simulate("proactive", campaign(), options)
    other = simulate("proactive", campaign(), SimulationOptions(agents=5, hours=0.5, seed=8))

    assert first == again
    assert first.calls > 100
    assert (other.calls, other.answered, other.occupancy) != (
        first.calls,
        first.answered,
        first.occupancy,
    )


def test_no_call_starts_outside_the_calling_window() -> None:
    # the window is 09:00-10:00 Shanghai; the day runs 30 min warm-up then 2 h measured
    result = simulate("proactive", campaign(), SimulationOptions(agents=5, hours=2.0, seed=1))

    assert result.calls_outside_window == 0
    assert result.calls > 0  # calls placed within 09:30-10:00 of the measured part
    assert result.finished_at.startswith("2025-03-03T")  # Monday, the first day with a window


def test_predictive_keeps_agents_busier_than_progressive_on_the_same_customers() -> None:
    progressive = simulate(
        "proactive", campaign(), SimulationOptions(pacing="progressive", agents=10, hours=0.5)
    )
    predictive = simulate("proactive", campaign(), SimulationOptions(agents=10, hours=0.5))

    assert progressive.abandoned == 0
    assert predictive.occupancy > progressive.occupancy + 0.05
    assert predictive.abandon_rate <= 0.05


def test_pacing_options_for_a_vip_campaign_are_refused() -> None:
    with pytest.raises(SimulationError, match="vip campaign paces one call per free agent"):
        simulate("care", campaign("care"), SimulationOptions(pacing="power"))


def test_simulate_command_prints_the_figures_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMI_SECRET", "s")
    monkeypatch.setenv("API_TOKEN", "t")
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    argv = ["simulate", "--config", str(config), "--campaign", "proactive", "--agents", "3"]
    argv += ["--hours", "0.25", "--pacing", "power", "--format", "json", "--seed", "2"]

    status = main(argv)

    figures = json.loads(capsys.readouterr().out)
    assert status == 0
    assert figures["pacing"] == "power"
    assert figures["agents"] == 3
    expected_keys = {"occupancy", "abandon_rate", "answer_rate", "calls", "answered", "abandoned"}
    expected_keys |= {"agent_idle_s_mean", "contacts_finished", "finished_at"}
    assert expected_keys | {"calls_outside_window"} <= figures.keys()


def test_simulate_command_names_an_unknown_campaign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMI_SECRET", "s")
    monkeypatch.setenv("API_TOKEN", "t")
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)

    status = main(["simulate", "--config", str(config), "--campaign", "nope"])

    assert status == 2
    assert "no campaign 'nope' (campaigns: care, proactive)" in capsys.readouterr().err


def test_predictive_stays_under_its_cap_when_agents_leave_and_the_answer_rate_jumps() -> None:
    wide = campaign().model_copy(update={"calling_windows": {"mon": (time_range("08:00-20:00"),)}})
    harder_day = SimulationOptions(
        agents=10,
        hours=3,
        seed=0,
        staffing_changes=((5400.0, 4), (9000.0, 10)),  # six agents away for an hour
        answer_rate_changes=((7200.0, 0.45),),  # then the customers answer far more
    )

    result = simulate("proactive", wide, harder_day)

    assert result.abandon_rate <= 0.03
    assert result.occupancy > 0.85
