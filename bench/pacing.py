"""Pacing through `dialer simulate`'s engine: the outbound campaign's real runner and pacer on
the virtual clock against the simulated call centre (`dialer.calling.simulate`).

Progressive (the baseline), power 1.5, predictive at 1% and at 3% (the abandon rule's cap set
to the same figure), with 5, 20 and 50 agents, 5 seeds each, in the issue's standard world:
answer rate 0.25 after a ring of 5-15 s, 15% busy after 2 s, the rest ring to 25 s, talk
lognormal mean 180 s CV 0.6, wrap-up 10 s, abandoned after 2 s without an agent, 30 min of
warm-up then 8 h measured. Prints, per team size and pacer, the medians over the seeds of
occupancy, the day's abandon rate (and the worst day), answer rate, calls, agent idle time
between calls, and the wall time per simulated day.

Run: `.venv/bin/python bench/pacing.py` (about 10 minutes on two CPUs; `--seeds 2 --agents 20`
for a quick look). Target at 20 agents: predictive >= 88% occupancy at <= 1% abandon, and
>= 91% at <= 3%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dialer.calling.simulate import SimulationOptions, SimulationResult, simulate  # noqa: E402
from dialer.config import Campaign, parse_settings  # noqa: E402
from dialer.logs import configure_logging  # noqa: E402

PACERS = ["progressive", "power 1.5", "predictive 1%", "predictive 3%"]
CONFIG = """\
ami:
  username: bench
  secret: ${SECRET}
api:
  token: ${SECRET}
campaigns:
  bench:
    kind: outbound
    channel: Local/{number}@customers
    agent_queue: agents
    max_concurrent_calls: 1000
    max_calls_per_second: 50
    calling_windows: {mon: ["08:00-20:00"]}
"""


@dataclass(frozen=True)
class Run:
    pacer: str
    agents: int
    seed: int


def campaign() -> Campaign:
    settings = parse_settings(CONFIG, source="bench", base_dir=REPO, environ={"SECRET": "x"})
    return settings.campaigns["bench"]


def options(run: Run) -> SimulationOptions:
    mode, _, setting = run.pacer.partition(" ")
    if mode == "power":
        return SimulationOptions(
            pacing=mode, ratio=float(setting), agents=run.agents, seed=run.seed
        )
    if mode == "predictive":
        cap = float(setting.rstrip("%")) / 100
        return SimulationOptions(
            pacing=mode, max_abandon_rate=cap, agents=run.agents, seed=run.seed
        )
    return SimulationOptions(pacing=mode, agents=run.agents, seed=run.seed)


def one_day(run: Run) -> tuple[Run, SimulationResult, float]:
    configure_logging("ERROR", "json", sys.stderr)
    started = time.perf_counter()
    result = simulate("bench", campaign(), options(run))
    return run, result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--agents", default="5,20,50", help="team sizes, comma-separated")
    parser.add_argument("--pacers", default=",".join(PACERS), help="comma-separated")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    team_sizes = [int(size) for size in args.agents.split(",")]
    pacers = [name.strip() for name in args.pacers.split(",")]
    runs = [
        Run(p, agents, seed) for agents in team_sizes for p in pacers for seed in range(args.seeds)
    ]
    runs.sort(key=lambda run: -run.agents)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one_day, runs))

    print(
        f"{args.seeds} seeds per row, medians; `dialer simulate` engine (the real runner);"
        " answer rate 0.25, 8 h measured after 30 min warm-up\n"
    )
    header = (
        f"{'agents':>6}  {'pacer':<14} {'occupancy':>9} {'vs prog':>8} {'abandon':>8}"
        f" {'worst':>7} {'answer':>7} {'calls':>6} {'idle s':>7} {'wall s/day':>10}"
    )
    print(header)
    print("-" * len(header))
    for agents in team_sizes:
        baseline = None
        for pacer in pacers:
            days = [
                (r, wall) for run, r, wall in results if (run.pacer, run.agents) == (pacer, agents)
            ]
            figures = [r for r, _ in days]
            occupancy = statistics.median(r.occupancy for r in figures)
            if pacer == "progressive":
                baseline = occupancy
            versus = f"{(occupancy - baseline) * 100:+.1f}pt" if baseline is not None else "-"
            idle = [r.agent_idle_s_mean for r in figures if r.agent_idle_s_mean is not None]
            print(
                f"{agents:>6}  {pacer:<14} {occupancy:>9.1%} {versus:>8}"
                f" {statistics.median(r.abandon_rate for r in figures):>8.2%}"
                f" {max(r.abandon_rate for r in figures):>7.2%}"
                f" {statistics.median(r.answer_rate for r in figures):>7.3f}"
                f" {statistics.median(r.calls for r in figures):>6.0f}"
                f" {statistics.median(idle) if idle else float('nan'):>7.1f}"
                f" {statistics.median(wall for _, wall in days):>10.1f}"
            )
            assert all(r.calls_outside_window == 0 for r in figures), "a call outside the window"
        print()


if __name__ == "__main__":
    main()
