"""Pacers in the simulated call centre: occupancy against abandon rate, a day at a time.

Each pacer paces the same simulated days (`dialer.calling.simworld`, the outbound issue's
standard world: answer rate 0.25, ring 5-15 s, talk lognormal mean 180 s CV 0.6, wrap-up 10 s,
abandoned after 2 s without an agent, 30 min warm-up then 8 h measured) with 5, 20 and 50 agents,
5 seeds each. The predictive pacer runs as the runner will run it: behind an `AbandonGuard` on
the day (progressive while the day's abandon rate is at the cap). Prints, per team size and
pacer, the median occupancy, the day's abandon rate (median and worst), the answer rate, calls
per agent-hour and the wall time per simulated day (median, one process per CPU); then the
predictive pacer's cost per decision (the time `calls_to_place` takes on snapshots recorded from
a day, after it has learnt; the best of 3 runs of each, so other load on the machine counts less).

Needs nothing but this checkout. Run: `.venv/bin/python bench/pacing_world.py` (about 90 s
on two CPUs; `--seeds 2 --agents 20` for a quick look).
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

from dialer.calling.abandon import AbandonGuard  # noqa: E402
from dialer.calling.predictive import (  # noqa: E402
    Pacer,
    PacingSnapshot,
    PowerPacer,
    PredictivePacer,
    ProgressivePacer,
)
from dialer.calling.simday import run_day  # noqa: E402
from dialer.calling.simworld import DayMetrics, WorldConfig  # noqa: E402

PACERS = ["progressive", "power 1.5", "predictive 1%", "predictive 3%"]


@dataclass(frozen=True)
class Run:
    pacer: str
    agents: int
    seed: int


def build(name: str) -> tuple[Pacer, AbandonGuard | None]:
    kind, _, setting = name.partition(" ")
    if kind == "progressive":
        return ProgressivePacer(), None
    if kind == "power":
        return PowerPacer(float(setting)), None
    cap = float(setting.rstrip("%")) / 100
    return PredictivePacer(cap), AbandonGuard(cap)


def one_day(run: Run) -> tuple[Run, DayMetrics, float]:
    pacer, guard = build(run.pacer)
    started = time.perf_counter()
    metrics = run_day(pacer, WorldConfig(agents=run.agents), seed=run.seed, guard=guard)
    return run, metrics, time.perf_counter() - started


def decision_cost_us(agents: int) -> tuple[float, float]:
    """(median, 90th percentile) of a predictive decision's cost, in microseconds."""
    pacer = PredictivePacer(0.01)
    snapshots: list[PacingSnapshot] = []

    def record(now_s: float, snapshot: PacingSnapshot, placed: int) -> None:
        if now_s > 3600.0 and len(snapshots) < 2000 and int(now_s) % 7 == 0:
            snapshots.append(snapshot)

    world = WorldConfig(agents=agents, measured_s=2 * 3600.0)
    run_day(pacer, world, seed=1, on_decision=record)
    costs = []
    for snapshot in snapshots:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            pacer.calls_to_place(snapshot)
            best = min(best, time.perf_counter() - started)
        costs.append(best * 1e6)
    costs.sort()
    return statistics.median(costs), costs[int(0.9 * len(costs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--agents", default="5,20,50", help="team sizes, comma-separated")
    parser.add_argument("--pacers", default=",".join(PACERS), help="comma-separated")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    team_sizes = [int(size) for size in args.agents.split(",")]
    pacers = [name.strip() for name in args.pacers.split(",")]
    runs = [
        Run(pacer, agents, seed)
        for agents in team_sizes
        for pacer in pacers
        for seed in range(args.seeds)
    ]
    runs.sort(key=lambda run: -run.agents * (10 if "predictive" in run.pacer else 1))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one_day, runs))

    print(
        f"{args.seeds} seeds per row; world: answer rate 0.25, ring 5-15 s, talk mean 180 s"
        " CV 0.6, wrap-up 10 s, abandoned after 2 s; 8 h measured after 30 min warm-up\n"
    )
    header = (
        f"{'agents':>6}  {'pacer':<14} {'occupancy':>9} {'abandon':>8} {'worst':>7}"
        f" {'answer':>7} {'calls/agent-h':>13} {'wall s/day':>10}"
    )
    print(header)
    print("-" * len(header))
    for agents in team_sizes:
        for pacer in pacers:
            days = [
                (m, wall) for run, m, wall in results if (run.pacer, run.agents) == (pacer, agents)
            ]
            metrics = [m for m, _ in days]
            print(
                f"{agents:>6}  {pacer:<14}"
                f" {statistics.median(m.occupancy for m in metrics):>9.1%}"
                f" {statistics.median(m.abandon_rate for m in metrics):>8.2%}"
                f" {max(m.abandon_rate for m in metrics):>7.2%}"
                f" {statistics.median(m.answer_rate for m in metrics):>7.3f}"
                f" {statistics.median(m.calls_per_agent_hour for m in metrics):>13.1f}"
                f" {statistics.median(wall for _, wall in days):>10.2f}"
            )
        print()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        costs = list(pool.map(decision_cost_us, team_sizes))
    print("predictive cost per decision (calls_to_place, CPython):")
    for agents, (median_us, p90_us) in zip(team_sizes, costs, strict=True):
        print(f"  {agents:>3} agents: median {median_us:.0f} us, 90th percentile {p90_us:.0f} us")


if __name__ == "__main__":
    main()
