"""A simulated day: a pacer (and its abandon guard) driving the simulated call centre
(`dialer.calling.simworld`) from the first call to the end of the measured hours."""

from __future__ import annotations

import math
from collections.abc import Callable

from dialer.calling.abandon import AbandonGuard
from dialer.calling.predictive import Pacer, PacingSnapshot, progressive_calls
from dialer.calling.simworld import DayMetrics, Happening, World, WorldConfig

__all__ = ["run_day"]


def run_day(
    pacer: Pacer,
    config: WorldConfig | None = None,
    *,
    seed: int = 0,
    guard: AbandonGuard | None = None,
    tick_s: float = 1.0,
    on_decision: Callable[[float, PacingSnapshot, int], None] | None = None,
) -> DayMetrics:
    """Run one day of `config` paced by `pacer`: a decision after every event and at least every
    `tick_s`; after the measured window no new attempt, and the calls placed settle.

    `guard`: the runner's cap, fed every answered call: while tripped, progressive pacing.
    `on_decision(now_s, snapshot, placed)`: called after each decision (tests watch with it).
    """
    config = config or WorldConfig()

    def listen(happening: Happening) -> None:
        kind = happening.kind
        if kind == "answered":
            pacer.observe_attempt(answered=True, ring_s=happening.duration_s)
        elif kind in ("busy", "no_answer"):
            pacer.observe_attempt(answered=False, ring_s=happening.duration_s)
        elif kind in ("connected", "abandoned"):
            abandoned = kind == "abandoned"
            pacer.observe_answered(abandoned=abandoned)
            if guard is not None:
                guard.observe_answered(abandoned=abandoned, at_s=happening.at_s)
        elif kind == "talk_ended":
            pacer.observe_talk(happening.duration_s)
        elif kind == "wrap_up_ended":
            pacer.observe_wrap_up(happening.duration_s)

    world = World(config, seed=seed, listener=listen)
    stop_placing_s = config.warm_up_s + config.measured_s
    settled_s = stop_placing_s + config.ring_timeout_s + config.abandon_after_s + 1.0
    next_tick_s = 0.0
    while True:
        now_s = min(world.next_event_s(), next_tick_s)
        if now_s > settled_s:
            break
        world.run_until(now_s)
        if now_s >= stop_placing_s:
            next_tick_s = math.inf
            continue
        snapshot = world.snapshot()
        if guard is not None and guard.tripped(now_s):
            placed = progressive_calls(snapshot)
        else:
            placed = pacer.calls_to_place(snapshot)
        for _ in range(placed):
            world.place()
        if on_decision is not None:
            on_decision(now_s, snapshot, placed)
        next_tick_s = now_s + tick_s
    return world.metrics()
