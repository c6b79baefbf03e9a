"""`dialer timeline PHONE --config FILE`: every decision about a phone number, oldest first.

The number may be written in any form that parses in the config's `default_region`. Numbers
are masked (`+86138****5678`) in what is printed, unless `--show-numbers`; `--format json`
prints the entries as `GET /v1/contacts/{phone}/timeline` answers them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from dialer.config import Settings
from dialer.logs import mask_phone, mask_phone_numbers
from dialer.phones import InvalidNumber, normalize
from dialer.store import Store, StoreError
from dialer.store.timeline_reports import entries_for
from dialer.timeline import TimelineEntry

__all__ = ["add_timeline_command", "render_timeline", "run_timeline_command"]

EXIT_OK, EXIT_USER_ERROR = 0, 2


def add_timeline_command(commands: Any) -> None:
    timeline = commands.add_parser("timeline", help="every decision about a phone number")
    timeline.add_argument("phone", metavar="PHONE", help="the number, in any form that parses")
    timeline.add_argument("--config", required=True, metavar="PATH", help="the YAML config file")
    timeline.add_argument("--format", choices=["text", "json"], default="text")
    timeline.add_argument("--limit", type=int, default=500, help="the last N entries (500)")
    timeline.add_argument(
        "--show-numbers", action="store_true", help="print whole phone numbers (masked otherwise)"
    )


def _shown(text: str, show_numbers: bool) -> str:
    return text if show_numbers else mask_phone_numbers(text)


def _detail(entry: TimelineEntry) -> str:
    """The detail worth a column: ids, the disposition, what a rule did."""
    keep = ("attempt_id", "message_id", "contact_id", "disposition", "why", "did", "stage", "event")
    parts = [
        f"{key}={json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value}"
        for key, value in entry.detail.items()
        if key in keep and value not in (None, "", [])
    ]
    return " ".join(parts)


def render_timeline(
    phone: str, entries: list[TimelineEntry], *, fmt: str, show_numbers: bool
) -> str:
    shown_phone = phone if show_numbers else mask_phone(phone)
    if fmt == "json":
        document = {"phone": shown_phone, "entries": [entry.as_json() for entry in entries]}
        return _shown(json.dumps(document, ensure_ascii=False, indent=2), show_numbers) + "\n"
    if not entries:
        return f"{shown_phone}: nothing recorded\n"
    lines = [f"timeline of {shown_phone} (times in UTC)"]
    lines.append(f"{'WHEN':<19}  {'WHAT':<17} {'CAMPAIGN':<18} {'ORDER':<12} REASON")
    for entry in entries:
        until = f" until {entry.until:%Y-%m-%d %H:%M}" if entry.until else ""
        reason = f"{entry.reason or ''}{until}"
        detail = _detail(entry)
        text = (
            f"{entry.at:%Y-%m-%d %H:%M:%S}  {entry.kind:<17} {entry.campaign or '-':<18} "
            f"{entry.order_id or '-':<12} {reason}{'  (' + detail + ')' if detail else ''}"
        )
        lines.append(_shown(text, show_numbers))
    return "\n".join(lines) + "\n"


async def _print(settings: Settings, phone: str, args: argparse.Namespace) -> int:
    store = await Store.open(settings.store.async_url)
    try:
        entries = await entries_for(store, phone, limit=max(1, args.limit))
    finally:
        await store.close()
    sys.stdout.write(
        render_timeline(phone, entries, fmt=args.format, show_numbers=args.show_numbers)
    )
    return EXIT_OK


def run_timeline_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        phone = normalize(args.phone, settings.default_region)
    except InvalidNumber as exc:
        print(f"dialer: PHONE: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        return asyncio.run(_print(settings, phone, args))
    except StoreError as exc:
        print(f"dialer: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
