"""The `dialer` command: run the daemon, check a config file, SMS dead letters, simulate a day,
a number's timeline.

Exit status: 0 done, 2 the operator must fix something (config, store path, port, a second
daemon on one SQLite file), 3 this worker was declared dead (paused past its lease: restart it),
1 a bug.
A user error prints what and where, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from dialer import __version__
from dialer.cli import sms
from dialer.cli.campaigns import add_campaign_commands, run_campaign_command
from dialer.cli.simulate import add_simulate_command, run_simulate
from dialer.cli.timeline import add_timeline_command, run_timeline_command
from dialer.config import ConfigError, Settings, load_settings
from dialer.logs import configure_logging, get_logger
from dialer.store import StoreError
from dialer.workers import ROLES, Role

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_LEASE_LOST = 3

log = get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialer",
        description="Outbound calls on Asterisk and order-stage SMS (pbx-outreach).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon until SIGTERM or SIGINT")
    run.add_argument("--config", required=True, metavar="PATH", help="the YAML config file")
    run.add_argument(
        "--role",
        action="append",
        choices=["all", *ROLES],
        metavar="ROLE",
        help="all, api, dispatcher or campaigns (repeat for several); default: worker.roles",
    )

    check = commands.add_parser("check-config", help="validate a config file; exit 2 on errors")
    check.add_argument("path", metavar="PATH")

    sms = commands.add_parser("sms", help="SMS dead letters: list them, queue one again")
    sms_commands = sms.add_subparsers(dest="sms_command", required=True, metavar="SMS_COMMAND")
    dead = sms_commands.add_parser("dead", help="list the dead messages and why they died")
    dead.add_argument("--config", required=True, metavar="PATH", help="the YAML config file")
    replay = sms_commands.add_parser("replay", help="queue dead message ID again")
    replay.add_argument("id", type=int, metavar="ID")
    replay.add_argument("--config", required=True, metavar="PATH", help="the YAML config file")

    add_campaign_commands(commands)
    add_simulate_command(commands)
    add_timeline_command(commands)
    return parser


def _load_or_report(path: str) -> Settings | None:
    try:
        return load_settings(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None


def check_config(path: str) -> int:
    settings = _load_or_report(path)
    if settings is None:
        return EXIT_USER_ERROR
    print(f"{path}: OK ({len(settings.campaigns)} campaigns)")
    return EXIT_OK


def roles_from(arguments: Sequence[str] | None) -> tuple[Role, ...] | None:
    """`--role` values: None (the config's), `all`, or the roles named, each once."""
    if not arguments:
        return None
    if "all" in arguments:
        return ROLES
    return tuple(role for role in ROLES if role in arguments)


async def _run_daemon(settings: Settings, config_path: str, roles: tuple[Role, ...] | None) -> None:
    from dialer.app import build  # the whole daemon: only `run` needs it (the others start fast)

    stop = asyncio.Event()
    daemon = build(settings, config_path=Path(config_path), roles=roles)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
    await daemon.run(stop)


def run(config_path: str, roles: tuple[Role, ...] | None = None) -> int:
    settings = _load_or_report(config_path)
    if settings is None:
        return EXIT_USER_ERROR
    from dialer.app import LeaseLost, StartupError

    configure_logging(settings.logging.level, settings.logging.format)
    log.info("daemon.starting", config=config_path, version=__version__)
    try:
        asyncio.run(_run_daemon(settings, config_path, roles))
    except StartupError as exc:
        log.error("daemon.start_failed", reason=str(exc))
        print(f"dialer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except LeaseLost as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return EXIT_LEASE_LOST
    return EXIT_OK


def sms_command(args: argparse.Namespace) -> int:
    settings = _load_or_report(args.config)
    if settings is None:
        return EXIT_USER_ERROR
    try:
        if args.sms_command == "dead":
            return asyncio.run(sms.print_dead(settings))
        if not asyncio.run(sms.replay(settings, args.id, now=datetime.now(UTC))):
            print(f"dialer: no dead message {args.id}", file=sys.stderr)
            return EXIT_USER_ERROR
    except StoreError as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"message {args.id} queued again")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "run":
        return run(args.config, roles_from(args.role))
    if args.command == "sms":
        return sms_command(args)
    if args.command == "simulate":
        settings = _load_or_report(args.config)
        if settings is None:
            return EXIT_USER_ERROR
        configure_logging("WARNING", "json", sys.stderr)  # the figures alone on stdout
        return run_simulate(args, settings)
    if args.command in ("contacts", "report"):
        settings = _load_or_report(args.config)
        return EXIT_USER_ERROR if settings is None else run_campaign_command(args, settings)
    if args.command == "timeline":
        settings = _load_or_report(args.config)
        return EXIT_USER_ERROR if settings is None else run_timeline_command(args, settings)
    raise AssertionError(f"unhandled command {args.command}")  # argparse refuses unknown ones
