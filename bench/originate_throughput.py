"""Originate throughput against the lab PBX: a campaign capped at 20 calls/s, 500 contacts.

The campaign runner (the daemon's own `CampaignService`, on a real AMI link and a SQLite store
in a temporary directory) dials 500 lab customers whose numbers end in 1001 (answer, talk 2 s,
hang up) through the refusal IVR. Prints the call start rate over the run against the cap, how
many calls were up at most, the outcomes, and this process's CPU time per call (the runner, the
AMI adapter, event correlation, the store: everything the daemon spends on a call).

Needs the lab PBX (`lab/pbx start`). Run: `.venv/bin/python bench/originate_throughput.py`
(`--no-timeline`: the store writes no timeline entry, to compare the CPU per call with and
without recording it).
"""
# ruff: noqa: E402  (the repository is put on sys.path first)

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dialer.calling.options import RunnerOptions
from dialer.calling.ports import NewContact, OriginateRequest
from dialer.calling.service import CampaignService
from dialer.logs import configure_logging
from dialer.pbx.adapter import AmiPbx
from dialer.pbx.client import AmiClient
from dialer.store import CampaignStore, Store
from tests.fakes.campaign_pbx import settings_with
from tests.support import lab_ami_options

CONTACTS = 500
CPS = 20.0
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CAMPAIGN = f"""
bench:
  kind: refusal_callback
  channel: Local/{{number}}@customers
  ring_timeout_s: 15
  max_concurrent_calls: 200
  max_calls_per_second: {CPS:g}
  calling_windows: {{{", ".join(f"{day}: [00:00-23:59]" for day in DAYS)}}}
  retry: {{}}
  max_total_attempts: 1
"""


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp}/bench.db")
        client = AmiClient(lab_ami_options(action_timeout_s=10))
        sent_at: list[float] = []
        originate = client.originate

        async def timed(request: OriginateRequest) -> None:
            sent_at.append(time.monotonic())
            await originate(request)

        client.originate = timed  # type: ignore[method-assign]
        service = CampaignService(
            settings_with(CAMPAIGN),
            CampaignStore(store),
            CampaignStore(store),
            AmiPbx(client),
            now=lambda: datetime.now(UTC),
            options=RunnerOptions(worker_id="bench", default_region="CN"),
        )
        client.add_event_handler(service.handle_event)
        runner = service.runners["bench"]
        most_up = 0
        ami = asyncio.create_task(client.run())
        try:
            await client.wait_logged_in(5)
            await service.open()
            await service.start()
            phones = [f"+86138{i:04d}1001" for i in range(CONTACTS)]
            await service.repository.add_contacts(
                runner.campaign_id, [NewContact(p) for p in phones], datetime.now(UTC)
            )

            async def watch() -> None:
                nonlocal most_up
                while True:
                    most_up = max(most_up, len(runner.calls))
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch())
            cpu_before, wall_before = time.process_time(), time.monotonic()
            await service.run_until_idle()
            cpu_s, wall_s = time.process_time() - cpu_before, time.monotonic() - wall_before
            watcher.cancel()
            rows = await service.repository.attempt_rows(runner.campaign_id)
        finally:
            ami.cancel()
            await asyncio.gather(ami, return_exceptions=True)
            await store.close()
    span_s = sent_at[-1] - sent_at[0]
    rate = (len(sent_at) - 1) / span_s
    outcomes = collections.Counter(row["outcome"] for row in rows)
    print(f"contacts: {CONTACTS}, cap {CPS:g} calls/s, calls placed: {len(sent_at)}")
    print(f"call start rate: {rate:.2f} calls/s over {span_s:.1f} s = {rate / CPS:.1%} of the cap")
    print("  (target >= 95%)")
    print(f"most calls up at once: {most_up}; outcomes: {dict(outcomes)}")
    print(f"whole run until the last call settled: {wall_s:.1f} s")
    print(f"CPU of this process: {cpu_s:.2f} s = {cpu_s / len(sent_at) * 1000:.2f} ms per call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-timeline", action="store_true", help="record no timeline entry")
    if parser.parse_args().no_timeline:
        from bench.timeline_switch import disable_timeline

        disable_timeline()
    print(f"timeline recording: {'off' if parser.parse_args().no_timeline else 'on'}")
    # The daemon logs every call at INFO as JSON: keep that cost in the figure, not on screen.
    with open(os.devnull, "w") as nowhere:
        configure_logging("INFO", "json", nowhere)
        asyncio.run(main())
