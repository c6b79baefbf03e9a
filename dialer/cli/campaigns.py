"""`dialer contacts import CAMPAIGN FILE.csv` and `dialer report CAMPAIGN` (see `dialer.cli`).

Both open the store named in the config (the daemon may be running: SQLite is in WAL mode, and
PostgreSQL is shared anyway) and print what they did; a user error exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialer.calling.contact_import import RowResult, import_records
from dialer.calling.csv_contacts import FileError, read_contacts_csv
from dialer.cli.report import render_report
from dialer.config import Settings
from dialer.health import StoreUnavailable
from dialer.store import CampaignStore, Store, StoreError

__all__ = ["add_campaign_commands", "run_campaign_command"]

EXIT_OK = 0
EXIT_USER_ERROR = 2


def add_campaign_commands(commands: Any) -> None:
    """Add `contacts import` and `report` to the `dialer` subcommands."""
    contacts = commands.add_parser("contacts", help="add contacts to a campaign")
    contact_commands = contacts.add_subparsers(
        dest="contacts_command", required=True, metavar="CONTACTS_COMMAND"
    )
    importing = contact_commands.add_parser(
        "import", help="import FILE.csv (phone,name,timezone,priority,+context columns)"
    )
    importing.add_argument("campaign", metavar="CAMPAIGN")
    importing.add_argument("file", metavar="FILE.csv")
    importing.add_argument("--config", required=True, metavar="PATH", help="the YAML config file")

    report = commands.add_parser("report", help="one row per attempt of CAMPAIGN")
    report.add_argument("campaign", metavar="CAMPAIGN")
    report.add_argument("--format", choices=("csv", "json"), default="csv")
    report.add_argument("--config", required=True, metavar="PATH", help="the YAML config file")
    report.add_argument(
        "--show-numbers", action="store_true", help="print whole phone numbers (masked otherwise)"
    )


def run_campaign_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.campaign not in settings.campaigns:
        known = ", ".join(settings.campaigns) or "none"
        print(f"dialer: no campaign {args.campaign!r}; defined: {known}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        if args.command == "contacts":
            return asyncio.run(_import(settings, args.campaign, Path(args.file)))
        return asyncio.run(_report(settings, args.campaign, args.format, args.show_numbers))
    except (StoreError, StoreUnavailable, FileError, OSError) as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


async def _open(settings: Settings, name: str) -> tuple[Store, CampaignStore, int]:
    store = await Store.open(settings.store.async_url)
    campaigns = CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign(name, settings.campaigns[name].kind)
    return store, campaigns, campaign_id


async def _import(settings: Settings, name: str, path: Path) -> int:
    """Stream the file into the campaign in short transactions; refused rows are printed as they
    come. A file that stops being readable ends the import there: what came before is kept (an
    import of the same file again merges, so it may simply be run again once fixed)."""
    store, campaigns, campaign_id = await _open(settings, name)

    def refused(result: RowResult) -> None:
        print(f"{path}: line {result.row}: {result.reason}", file=sys.stderr)

    try:
        found = await import_records(
            campaigns,
            campaign_id,
            settings.campaigns[name],
            read_contacts_csv(path),
            default_region=settings.default_region,
            now=datetime.now(UTC),
            on_refused=refused,
        )
    finally:
        await store.close()
    print(
        f"{name}: {found['added']} added, {found['merged']} merged, "
        f"{found['finished']} already finished, {found['refused']} refused"
    )
    return EXIT_OK


async def _report(settings: Settings, name: str, fmt: Any, show_numbers: bool) -> int:
    store, campaigns, campaign_id = await _open(settings, name)
    try:
        rows = await campaigns.attempt_rows(campaign_id)
    finally:
        await store.close()
    sys.stdout.write(render_report(rows, fmt, show_numbers=show_numbers))
    return EXIT_OK
