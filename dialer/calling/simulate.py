"""`dialer simulate`: a campaign's own runner and pacer for a day, on a virtual clock, against
the simulated call centre (no Asterisk, no store, no sleeping).

The campaign's real `CampaignRunner` (admission, calling windows, pacing permits, CPS and
concurrency caps, following and settling each call, retry rules) dials contacts from an
in-memory repository (`dialer.calling.simstore`) through `SimulatedPbx`
(`dialer.calling.simpbx`), whose world (`dialer.calling.simworld`) answers each call with
probability `answer_rate` after 5-15 s, fails 15% after 2 s, lets the rest ring to the
campaign's ring timeout, has agents talk a lognormal time (mean 180 s, CV 0.6) then wrap up
10 s, and abandons an answered caller no agent takes within the campaign's `abandon_after_s`.
All of it runs on `virtual_time.run_virtual`: the day starts when the campaign's first window
opens on the first weekday it has one from 2025-03-03 (a Monday), 30 minutes of warm-up are not
measured, then `hours` are; then no call is started and the calls up end.

The figures are the world's, over the measured hours (`simworld.DayMetrics`), and
`calls_outside_window`: Originates sent while the campaign's calling window was closed for
the contact (0, or the runner has a bug). The same seed gives the same figures.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dialer.calling.calls import CallRouter
from dialer.calling.options import RunnerOptions
from dialer.calling.ports import LiveChannel, NewContact, OriginateRequest
from dialer.calling.runner import CampaignRunner
from dialer.calling.simpbx import SimulatedPbx
from dialer.calling.simstore import MemoryCampaigns
from dialer.calling.simworld import WorldConfig
from dialer.calling.virtual_time import VirtualClock, run_virtual
from dialer.config import Campaign, OutboundCampaign
from dialer.metrics import Metrics
from dialer.windows import CallingWindows, is_open

__all__ = ["SimulationError", "SimulationOptions", "SimulationResult", "simulate"]

FIRST_DAY = date(2025, 3, 3)
WARM_UP_S = 1800.0
CONTACTS_PER_AGENT_HOUR = 120
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SimulationError(ValueError):
    """The options do not fit the campaign (e.g. a pacing mode for a kind without pacing)."""


@dataclass(frozen=True)
class SimulationOptions:
    pacing: str | None = None
    """progressive, power or predictive; None: the campaign's own."""
    max_abandon_rate: float | None = None
    """The predictive pacer's cap (and the rule's, when lower); None: the campaign's."""
    ratio: float | None = None
    """The power pacer's ratio; None: the campaign's."""
    agents: int = 20
    answer_rate: float = 0.25
    hours: float = 8.0
    seed: int = 0
    max_concurrent_calls: int | None = None
    """None: the campaign's."""
    staffing_changes: tuple[tuple[float, int], ...] = ()
    """(at_s, agents taking calls from then on): log-ins, log-outs, pauses (a harder day)."""
    answer_rate_changes: tuple[tuple[float, float], ...] = ()
    """(at_s, answer rate from then on)."""


@dataclass(frozen=True)
class SimulationResult:
    campaign: str
    pacing: str
    agents: int
    seed: int
    occupancy: float
    abandon_rate: float
    answer_rate: float
    calls: int
    answered: int
    abandoned: int
    agent_idle_s_mean: float | None
    contacts_finished: int
    finished_at: str
    calls_outside_window: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def simulated_campaign(campaign: Campaign, options: SimulationOptions) -> Campaign:
    """The campaign with the options' pacing; SimulationError when its kind has no pacing."""
    changes: dict[str, Any] = {}
    if options.max_concurrent_calls is not None:
        changes["max_concurrent_calls"] = options.max_concurrent_calls
    wants_pacing = (options.pacing, options.max_abandon_rate, options.ratio) != (None,) * 3
    if wants_pacing:
        if not isinstance(campaign, OutboundCampaign):
            raise SimulationError(
                f"a {campaign.kind} campaign paces one call per free agent; "
                "--pacing and --max-abandon-rate are for an outbound campaign"
            )
        pacing: dict[str, Any] = {}
        if options.pacing is not None:
            pacing["mode"] = options.pacing
        if options.ratio is not None:
            pacing["ratio"] = options.ratio
        rule = campaign.abandon_rule
        if options.max_abandon_rate is not None:
            pacing["max_abandon_rate"] = options.max_abandon_rate
            rule = rule.model_copy(update={"max_rate": options.max_abandon_rate})
        try:
            changes["pacing"] = type(campaign.pacing).model_validate(
                {**campaign.pacing.model_dump(), **pacing}
            )
            changes["abandon_rule"] = type(rule).model_validate(rule.model_dump())
        except ValueError as exc:
            raise SimulationError(str(exc)) from None
    return campaign.model_copy(update=changes) if changes else campaign


def day_start(campaign: Campaign) -> datetime:
    """When the campaign's first window opens on its first working day from FIRST_DAY (UTC)."""
    windows = CallingWindows.from_config(campaign.calling_windows, campaign.holidays)
    day = FIRST_DAY
    for _ in range(60):
        weekday = _WEEKDAYS[day.weekday()]
        spans = next((s for d, s in campaign.calling_windows.items() if d == weekday), ())
        if spans and day not in campaign.holidays:
            local = datetime.combine(day, spans[0].start, tzinfo=campaign.zone)
            if is_open(windows, local, campaign.zone):
                return local.astimezone(UTC)
        day += timedelta(days=1)
    raise SimulationError("the campaign has no calling window in the next 60 days")


class _WatchedPbx:
    """The simulated PBX, counting Originates sent while the calling window is closed."""

    def __init__(self, pbx: SimulatedPbx, windows: CallingWindows, campaign: Campaign) -> None:
        self.pbx = pbx
        self.windows = windows
        self.campaign = campaign
        self.clock: VirtualClock | None = None
        self.outside_window = 0

    @property
    def logged_in(self) -> bool:
        return True

    async def wait_logged_in(self) -> None:
        return None

    async def originate(self, request: OriginateRequest) -> None:
        assert self.clock is not None
        if not is_open(self.windows, self.clock(), self.campaign.zone):
            self.outside_window += 1
        await self.pbx.originate(request)

    async def queue_status(self, queue: str) -> list[Mapping[str, str]]:
        return await self.pbx.queue_status(queue)

    async def live_channels(self) -> list[LiveChannel]:
        return []

    async def db_get(self, family: str, key: str) -> str | None:
        return None


def simulate(
    name: str, campaign: Campaign, options: SimulationOptions, *, default_region: str = "CN"
) -> SimulationResult:
    """Run the day (module docstring) and return its figures."""
    campaign = simulated_campaign(campaign, options)
    return run_virtual(_simulate(name, campaign, options, default_region))


async def _simulate(
    name: str, campaign: Campaign, options: SimulationOptions, default_region: str
) -> SimulationResult:
    if campaign.agent_queue is None:
        raise SimulationError(f"campaign {name} has no agent_queue: nothing to simulate")
    rule = campaign.pacing_rule()
    measured_s = options.hours * 3600.0
    world = WorldConfig(
        agents=options.agents,
        answer_rate=options.answer_rate,
        ring_timeout_s=campaign.ring_timeout_s,
        abandon_after_s=rule.abandon_after_s if rule is not None else 2.0,
        warm_up_s=WARM_UP_S,
        measured_s=measured_s,
        staffing_changes=options.staffing_changes,
        answer_rate_changes=options.answer_rate_changes,
    )
    clock = VirtualClock(day_start(campaign))
    router = CallRouter(clock=lambda: clock().timestamp(), wall=clock)
    simulated = SimulatedPbx(
        world, seed=options.seed, on_event=router.handle, queue=campaign.agent_queue
    )
    windows = CallingWindows.from_config(campaign.calling_windows, campaign.holidays)
    pbx = _WatchedPbx(simulated, windows, campaign)
    pbx.clock = clock
    repository = MemoryCampaigns()
    runner = CampaignRunner(
        name,
        campaign,
        repository=repository,
        pbx=pbx,
        router=router,
        now=clock,
        options=RunnerOptions(worker_id="simulate", default_region=default_region),
        metrics=Metrics(),
    )
    router.on_queue_event(runner.queue_event)
    await runner.open()
    contacts = math.ceil(options.agents * (options.hours + 1) * CONTACTS_PER_AGENT_HOUR)
    await repository.add_contacts(
        runner.campaign_id,
        [NewContact(phone=f"+86138{number:08d}") for number in range(contacts)],
        clock(),
    )
    runner.reset_queue(await pbx.queue_status(campaign.agent_queue))
    stop = asyncio.Event()
    playing = asyncio.get_running_loop().create_task(simulated.run())
    dialling = asyncio.get_running_loop().create_task(runner.run(stop))
    await asyncio.sleep(WARM_UP_S + measured_s)
    stop.set()
    await dialling
    await simulated.catch_up()
    playing.cancel()
    figures = simulated.world.metrics()
    idle = figures.agent_idle_s_mean
    return SimulationResult(
        campaign=name,
        pacing=rule.mode if rule is not None else "progressive",
        agents=options.agents,
        seed=options.seed,
        occupancy=round(figures.occupancy, 4),
        abandon_rate=round(figures.abandon_rate, 4),
        answer_rate=round(figures.answer_rate, 4),
        calls=figures.calls,
        answered=figures.answered,
        abandoned=figures.abandoned,
        agent_idle_s_mean=None if math.isnan(idle) else round(idle, 1),
        contacts_finished=repository.finished(),
        finished_at=clock().isoformat(),
        calls_outside_window=pbx.outside_window,
    )
