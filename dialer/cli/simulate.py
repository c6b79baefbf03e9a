"""`dialer simulate`: a campaign's day on the virtual clock (`dialer.calling.simulate`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dialer.calling.simulate import SimulationError, SimulationOptions, simulate
from dialer.config import Settings

__all__ = ["add_simulate_command", "run_simulate"]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    return parse


def add_simulate_command(commands: Any) -> None:
    simulate_parser = commands.add_parser(
        "simulate",
        help="run a campaign's runner and pacer for a simulated day (no PBX, no store)",
    )
    add = simulate_parser.add_argument
    add("--config", required=True, metavar="PATH", help="the YAML config file")
    add("--campaign", required=True, metavar="NAME", help="the campaign to simulate")
    add("--pacing", choices=["progressive", "power", "predictive"], help="default: the config's")
    add("--ratio", type=_positive(float), metavar="R", help="power: calls per free agent")
    add("--max-abandon-rate", type=_fraction, metavar="R", help="predictive: the cap")
    add("--agents", type=_positive(int), default=20, metavar="N", help="agents (default 20)")
    add("--answer-rate", type=_fraction, default=0.25, metavar="P", help="default 0.25")
    add("--hours", type=_positive(float), default=8.0, metavar="H", help="measured (default 8)")
    add("--seed", type=int, default=0, metavar="S", help="the day's seed (default 0)")
    add("--format", choices=["json", "text"], default="text")


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Print the day's figures; 2 when the campaign or the options do not fit."""
    campaign = settings.campaigns.get(args.campaign)
    if campaign is None:
        known = ", ".join(sorted(settings.campaigns)) or "none"
        print(f"dialer: no campaign {args.campaign!r} (campaigns: {known})", file=sys.stderr)
        return 2
    if campaign.max_concurrent_calls < 2 * args.agents:
        print(
            f"dialer: note: max_concurrent_calls {campaign.max_concurrent_calls} may hold "
            f"{args.agents} agents back (calls with an agent count too)",
            file=sys.stderr,
        )
    options = SimulationOptions(
        pacing=args.pacing,
        ratio=args.ratio,
        max_abandon_rate=args.max_abandon_rate,
        agents=args.agents,
        answer_rate=args.answer_rate,
        hours=args.hours,
        seed=args.seed,
    )
    try:
        result = simulate(
            args.campaign, campaign, options, default_region=settings.default_region
        ).as_dict()
    except SimulationError as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0
