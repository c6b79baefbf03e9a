"""For campaign tests: settings from a YAML snippet, and a fake PBX that plays scripted calls.

`FakePbx` answers an Originate the way the lab PBX does, from a script keyed by the number's
last four digits (the lab's customers): it pushes the events Asterisk would send (Newchannel,
DialEnd, Hangup, OriginateResponse, UserEvent...) into the campaign service's handler, after
the Originate returns, in the order the lab PBX sends them. No time passes: the calls end at
once, so a runner in burst mode settles them without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer.calling.ports import LiveChannel, OriginateRequest, PbxNotSent, PbxRefused
from dialer.config import Settings, parse_settings

BASE = """\
ami: {host: 127.0.0.1, port: 15038, username: outreach, secret: "${AMI_SECRET}"}
api: {token: "${API_TOKEN}"}
default_region: CN
campaigns:
"""
ENV = {"AMI_SECRET": "s", "API_TOKEN": "t"}


def settings_with(campaigns_yaml: str, base_dir: Path | None = None, **extra: str) -> Settings:
    """Settings holding the campaigns written (indented by 2) in `campaigns_yaml`."""
    text = BASE + "".join(f"  {line}\n" for line in campaigns_yaml.strip("\n").splitlines())
    return parse_settings(
        text, source="test.yaml", base_dir=base_dir or Path("."), environ={**ENV, **extra}
    )


class FakeClock:
    """An aware UTC clock moved by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


async def never(_: float) -> None:
    await asyncio.Event().wait()


Script = Callable[[OriginateRequest], list[dict[str, str]]]


def _leg_events(request: OriginateRequest, cause1: str, cause2: str) -> list[dict[str, str]]:
    one, two = request.channel_id, request.other_channel_id
    return [
        {"Event": "Hangup", "Uniqueid": two, "Linkedid": one, "Cause": cause2},
        {"Event": "Hangup", "Uniqueid": one, "Linkedid": one, "Cause": cause1},
    ]


def lab_script(request: OriginateRequest) -> list[dict[str, str]]:
    """What the lab PBX sends for the customer the channel's last four digits name."""
    one, two = request.channel_id, request.other_channel_id
    suffix = request.channel.split("@")[0][-4:]
    start = [
        {"Event": "Newchannel", "Uniqueid": one, "Linkedid": one},
        {"Event": "Newchannel", "Uniqueid": two, "Linkedid": one},
    ]

    def response(ok: bool, reason: str) -> dict[str, str]:
        return {
            "Event": "OriginateResponse",
            "ActionID": request.action_id,
            "Response": "Success" if ok else "Failure",
            "Reason": reason,
            "Uniqueid": one,
        }

    def dial_end(status: str) -> dict[str, str]:
        return {"Event": "DialEnd", "DestUniqueid": one, "Linkedid": one, "DialStatus": status}

    if suffix in ("1001", "1005", "1008") or suffix.startswith("110"):
        events = [*start, dial_end("ANSWER"), response(True, "4")]
        if request.context == "outreach-vip":
            events.append({"Event": "AgentConnect", "Linkedid": one, "Queue": "agents"})
        if suffix.startswith("110"):
            events.append(
                {
                    "Event": "UserEvent",
                    "UserEvent": "OutreachDisposition",
                    "AttemptId": request.variables.get("ATTEMPT_ID", ""),
                    "Campaign": request.variables.get("CAMPAIGN", ""),
                    "Digit": suffix[-1],
                    "Linkedid": one,
                }
            )
        return events + _leg_events(request, "16", "16")
    table = {
        "1002": ("5", "BUSY", "0", "17"),
        "1003": ("3", None, "19", "19"),
        "1004": ("8", "CONGESTION", "0", "34"),
        "1006": ("0", "NOANSWER", "21", "21"),
        "1007": ("0", "CHANUNAVAIL", "20", "20"),
    }
    reason, status, cause1, cause2 = table.get(suffix, ("0", "NOANSWER", "1", "1"))
    events = list(start)
    if status:
        events.append(dial_end(status))
    return [*events, *_leg_events(request, cause1, cause2), response(False, reason)]


@dataclass
class FakePbx:
    """Stands in for the campaigns' `Pbx` (`dialer.pbx.adapter.AmiPbx`) in campaign tests."""

    script: Script = lab_script
    handler: Callable[[Mapping[str, str]], Awaitable[None]] | None = None
    logged_in: bool = True
    originated: list[OriginateRequest] = field(default_factory=list)
    records: dict[tuple[str, str], str] = field(default_factory=dict)
    """AstDB: (family, key) -> value, as the dialplan's outreach-record writes them."""
    refusals: list[str] = field(default_factory=list)
    """Messages of the next Originates the PBX refuses (Response: Error), one each."""
    hold: bool = False
    """True: events wait until `release()` (calls stay up)."""
    live: list[dict[str, str]] = field(default_factory=list)
    queue_members: list[dict[str, str]] = field(default_factory=list)
    up_now: int = 0
    most_up: int = 0
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    _held: list[list[dict[str, str]]] = field(default_factory=list)

    async def wait_logged_in(self) -> None:
        return None

    async def originate(self, request: OriginateRequest) -> None:
        if not self.logged_in:
            raise PbxNotSent("fake link down")
        if self.refusals:
            raise PbxRefused(self.refusals.pop(0))
        self.originated.append(request)
        self.sent.set()
        self.up_now += 1
        self.most_up = max(self.most_up, self.up_now)
        events = self.script(request)
        if self.hold:
            self._held.append(events)
        else:
            asyncio.get_running_loop().create_task(self._play(events))

    async def wait_originated(self, count: int) -> None:
        """Until `count` Originates have been sent in all."""
        while len(self.originated) < count:
            self.sent.clear()
            await self.sent.wait()

    async def release(self) -> None:
        held, self._held = self._held, []
        for events in held:
            await self._play(events)

    async def _play(self, events: list[dict[str, str]]) -> None:
        assert self.handler is not None
        for event in events:
            await self.handler(event)
        self.up_now -= 1

    async def queue_status(self, queue: str) -> list[Mapping[str, str]]:
        return list(self.queue_members)

    async def db_get(self, family: str, key: str) -> str | None:
        return self.records.get((family, key))

    async def live_channels(self) -> list[LiveChannel]:
        return [
            LiveChannel(
                uniqueid=item.get("Uniqueid", ""),
                linkedid=item.get("Linkedid", ""),
                up=item.get("ChannelState") == "6",
            )
            for item in self.live
        ]


NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
