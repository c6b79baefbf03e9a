"""Pacing an agent queue: progressive, power and predictive pacers, and what they learn from."""

from __future__ import annotations

import ast
import math
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.calling.abandon import AbandonGuard
from dialer.calling.pacing_stats import (
    Durations,
    RingTimes,
    poisson_difference_at_least,
)
from dialer.calling.predictive import (
    PacingSnapshot,
    PowerPacer,
    PredictivePacer,
    ProgressivePacer,
    progressive_calls,
)
from dialer.calling.simday import run_day
from dialer.calling.simworld import DayMetrics, WorldConfig

REPO = Path(__file__).resolve().parents[3]
HOUR_S = 3600.0

snapshots = st.builds(
    PacingSnapshot,
    agents_idle=st.integers(0, 60),
    agents_wrapping=st.lists(st.floats(0, 30), max_size=20),
    agents_talking=st.lists(st.floats(0, 900), max_size=60),
    callers_waiting=st.integers(0, 10),
    ringing=st.lists(st.floats(0, 30), max_size=80),
)


def taught(pacer: PredictivePacer, *, attempts: int = 400, talks: int = 60) -> PredictivePacer:
    """The standard world's calls, as the runner would report them."""
    rng = random.Random(7)
    for _ in range(attempts):
        chance = rng.random()
        if chance < 0.25:
            pacer.observe_attempt(answered=True, ring_s=rng.uniform(5.0, 15.0))
        else:
            pacer.observe_attempt(answered=False, ring_s=2.0 if chance < 0.40 else 25.0)
    for _ in range(talks):
        pacer.observe_talk(rng.lognormvariate(5.039, 0.5545))
        pacer.observe_wrap_up(10.0)
    return pacer


# A team of 10 whose 2 agents in wrap-up are about to be free: progressive waits for them.
ABOUT_TO_FREE = PacingSnapshot(
    agents_idle=0,
    agents_wrapping=[8.0, 9.0],
    agents_talking=[30.0, 60.0, 90.0, 120.0, 150.0, 200.0, 250.0, 400.0],
)


# ----------------------------------------------------------------------------------- progressive


@given(snapshots)
def test_progressive_never_places_more_calls_than_free_agents(snapshot: PacingSnapshot) -> None:
    placed = ProgressivePacer().calls_to_place(snapshot)

    assert placed >= 0
    if placed:
        assert placed + len(snapshot.ringing) + snapshot.callers_waiting <= snapshot.agents_idle


def test_progressive_fills_each_free_agent_once() -> None:
    snapshot = PacingSnapshot(agents_idle=5, callers_waiting=1, ringing=[3.0, 12.0])

    assert ProgressivePacer().calls_to_place(snapshot) == 2


def test_progressive_abandons_nothing_over_a_day() -> None:
    metrics = run_day(ProgressivePacer(), WorldConfig(agents=5), seed=3)

    assert metrics.answered > 300
    assert metrics.abandoned == 0


# ----------------------------------------------------------------------------------------- power


def test_power_places_its_ratio_of_calls_per_free_agent() -> None:
    assert PowerPacer(1.5).calls_to_place(PacingSnapshot(agents_idle=4)) == 6
    assert PowerPacer(2.0).calls_to_place(PacingSnapshot(agents_idle=3)) == 6


def test_power_counts_the_calls_already_ringing_and_the_callers_waiting() -> None:
    pacer = PowerPacer(1.5)

    assert pacer.calls_to_place(PacingSnapshot(agents_idle=4, ringing=[1.0, 5.0, 9.0])) == 3
    assert pacer.calls_to_place(PacingSnapshot(agents_idle=4, ringing=[1.0] * 7)) == 0
    assert pacer.calls_to_place(PacingSnapshot(agents_idle=4, callers_waiting=2)) == 3


def test_power_never_counts_busy_agents() -> None:
    snapshot = PacingSnapshot(agents_idle=0, agents_talking=[60.0] * 20, agents_wrapping=[5.0])

    assert PowerPacer(3.0).calls_to_place(snapshot) == 0


def test_power_refuses_a_ratio_below_one() -> None:
    with pytest.raises(ValueError, match="ratio"):
        PowerPacer(0.5)


# ------------------------------------------------------------------------------------ predictive


def test_predictive_paces_progressive_while_warming_up() -> None:
    pacer = taught(PredictivePacer(0.03), attempts=199)

    assert pacer.warming_up
    assert pacer.calls_to_place(ABOUT_TO_FREE) == 0
    assert pacer.calls_to_place(PacingSnapshot(agents_idle=3, ringing=[4.0])) == 2


def test_predictive_needs_talks_as_well_as_attempts_to_stop_warming_up() -> None:
    pacer = taught(PredictivePacer(0.03), attempts=400, talks=29)

    assert pacer.warming_up
    pacer.observe_talk(150.0)
    assert not pacer.warming_up


def test_predictive_dials_ahead_of_agents_about_to_be_free_once_learnt() -> None:
    pacer = taught(PredictivePacer(0.03))

    assert progressive_calls(ABOUT_TO_FREE) == 0
    assert pacer.calls_to_place(ABOUT_TO_FREE) >= 2


@given(snapshots)
def test_predictive_never_places_fewer_calls_than_progressive(snapshot: PacingSnapshot) -> None:
    pacer = taught(PredictivePacer(0.01))

    assert pacer.calls_to_place(snapshot) >= progressive_calls(snapshot)


def test_predictive_places_nothing_without_an_agent() -> None:
    pacer = taught(PredictivePacer(0.03))

    assert pacer.calls_to_place(PacingSnapshot(agents_idle=0)) == 0
    assert pacer.calls_to_place(PacingSnapshot(agents_idle=0, ringing=[1.0, 20.0])) == 0


def test_predictive_places_less_the_more_calls_already_ring() -> None:
    pacer = taught(PredictivePacer(0.03))
    quiet = pacer.calls_to_place(ABOUT_TO_FREE)
    busy = PacingSnapshot(
        agents_idle=0,
        agents_wrapping=ABOUT_TO_FREE.agents_wrapping,
        agents_talking=ABOUT_TO_FREE.agents_talking,
        ringing=[6.0] * 6,
    )

    assert pacer.calls_to_place(busy) < quiet


def test_predictive_reads_a_negative_elapsed_time_as_zero() -> None:
    def with_first(elapsed_s: float) -> PacingSnapshot:  # a clock that went back a little
        return PacingSnapshot(
            agents_idle=0,
            agents_wrapping=[elapsed_s, *ABOUT_TO_FREE.agents_wrapping],
            agents_talking=[elapsed_s, *ABOUT_TO_FREE.agents_talking],
            ringing=[elapsed_s] * 3,
        )

    skewed = taught(PredictivePacer(0.03)).calls_to_place(with_first(-1.5))

    assert skewed == taught(PredictivePacer(0.03)).calls_to_place(with_first(0.0))


def test_predictive_estimates_what_it_was_taught() -> None:
    estimates = taught(PredictivePacer(0.03)).estimates

    assert not estimates.warming_up
    assert estimates.attempts_seen == 400
    assert estimates.answer_rate == pytest.approx(0.25, abs=0.05)
    assert estimates.answered_ring_mean_s == pytest.approx(10.0, abs=1.0)
    assert estimates.talk_mean_s == pytest.approx(180.0, abs=30.0)
    assert estimates.wrap_up_mean_s == 10.0
    assert estimates.target_abandon_rate == pytest.approx(0.024)


def test_predictive_refuses_a_target_above_its_cap() -> None:
    with pytest.raises(ValueError, match="target_abandon_rate"):
        PredictivePacer(0.01, target_abandon_rate=0.02)


@pytest.fixture(scope="module")
def learnt_day() -> tuple[DayMetrics, DayMetrics]:
    """Predictive (3% cap) and progressive over the same 4 h with 8 agents, answer rate 0.25."""
    world = WorldConfig(agents=8, measured_s=4 * HOUR_S)
    return (
        run_day(PredictivePacer(0.03), world, seed=11),
        run_day(ProgressivePacer(), world, seed=11),
    )


def test_predictive_keeps_agents_busier_than_progressive(
    learnt_day: tuple[DayMetrics, DayMetrics],
) -> None:
    predictive, progressive = learnt_day

    assert predictive.occupancy > progressive.occupancy + 0.08
    assert predictive.contacts_finished > progressive.contacts_finished


def test_predictive_keeps_the_day_abandon_rate_near_its_target(
    learnt_day: tuple[DayMetrics, DayMetrics],
) -> None:
    predictive, _ = learnt_day

    assert predictive.answered > 400
    assert 0.005 < predictive.abandon_rate <= 0.03


def test_predictive_stops_placing_while_every_agent_is_paused() -> None:
    placed_without_agents = []
    placed_while_paused = []

    def watch(now_s: float, snapshot: PacingSnapshot, placed: int) -> None:
        if snapshot.agents_available == 0:
            placed_without_agents.append(placed)
        if 2 * HOUR_S <= now_s < 3 * HOUR_S:
            placed_while_paused.append(placed)

    world = WorldConfig(
        agents=8,
        measured_s=3 * HOUR_S,
        staffing_changes=((2 * HOUR_S, 0), (3 * HOUR_S, 8)),
    )
    metrics = run_day(PredictivePacer(0.03), world, seed=5, on_decision=watch)

    assert len(placed_without_agents) > 3000  # the pause was seen, decision after decision
    assert sum(placed_without_agents) == 0
    assert sum(placed_while_paused) == 0
    assert metrics.abandon_rate <= 0.03


def test_predictive_places_nothing_when_nobody_logs_in() -> None:
    world = WorldConfig(agents=8, measured_s=HOUR_S, staffing_changes=((0.0, 0),))

    metrics = run_day(PredictivePacer(0.03), world, seed=5)

    assert metrics.calls == 0


def test_predictive_re_adapts_after_the_answer_rate_drops() -> None:
    pacer = PredictivePacer(0.03)
    world = WorldConfig(
        agents=8,
        answer_rate=0.35,
        measured_s=4 * HOUR_S,
        answer_rate_changes=((2 * HOUR_S, 0.15),),
    )
    metrics = run_day(pacer, world, seed=2)
    progressive = run_day(ProgressivePacer(), world, seed=2)

    assert pacer.estimates.answer_rate == pytest.approx(0.15, abs=0.04)
    assert metrics.abandon_rate <= 0.03
    assert metrics.occupancy > progressive.occupancy + 0.05


def test_predictive_stays_under_its_cap_when_the_answer_rate_rises() -> None:
    pacer = PredictivePacer(0.03)
    world = WorldConfig(
        agents=8,
        answer_rate=0.15,
        measured_s=4 * HOUR_S,
        answer_rate_changes=((2 * HOUR_S, 0.35),),
    )
    metrics = run_day(pacer, world, seed=4)

    assert pacer.estimates.answer_rate == pytest.approx(0.35, abs=0.05)
    assert metrics.abandon_rate <= 0.03


# ---------------------------------------------------------------------------- what it learns from


@pytest.mark.parametrize(
    ("m", "b", "a"),
    [(1, 0.5, 0.0), (2, 1.5, 0.7), (3, 0.2, 2.5), (0, 1.0, 1.0), (-2, 0.3, 4.0), (5, 6.0, 1.0)],
)
def test_the_poisson_difference_tail_matches_a_direct_sum(m: int, b: float, a: float) -> None:
    def pmf(rate: float, k: int) -> float:
        return math.exp(-rate) * rate**k / math.factorial(k)

    direct = sum(pmf(b, i) * pmf(a, j) for i in range(60) for j in range(60) if i - j >= m)

    assert poisson_difference_at_least(m, b, a) == pytest.approx(direct, abs=1e-9)


def test_the_poisson_difference_tail_is_certain_or_impossible_without_randomness() -> None:
    assert poisson_difference_at_least(0, 0.0, 0.0) == 1.0
    assert poisson_difference_at_least(1, 0.0, 0.0) == 0.0


def test_a_fixed_wrap_up_is_not_over_before_its_time() -> None:
    wrap_ups = Durations(bin_s=0.5, max_s=900.0, window=100)
    for _ in range(50):
        wrap_ups.add(10.0)

    assert wrap_ups.done_within(1.0, 8.5) < 0.05
    assert wrap_ups.done_within(1.0, 9.5) > 0.95


def test_a_call_ringing_longer_than_any_answered_one_will_not_be_answered() -> None:
    rings = RingTimes()
    rng = random.Random(3)
    for _ in range(100):
        rings.add(answered=True, ring_s=rng.uniform(5.0, 15.0))
    for _ in range(300):
        rings.add(answered=False, ring_s=25.0)

    assert rings.answer_rate == 0.25
    assert rings.answer_within(16.0, 5.0) == 0.0
    assert rings.answer_within(0.0, 30.0) == pytest.approx(0.25, abs=0.01)
    assert rings.answer_within(10.0, 20.0) == pytest.approx(50 / 350, abs=0.05)


def test_the_fast_sums_add_the_same_chances_as_one_at_a_time() -> None:
    pacer = taught(PredictivePacer(0.03))
    talks, rings = pacer._talk, pacer._ring
    elapsed, spans = [0.0, 35.5, 150.2, 400.0, 9000.0], [0.0, 3.0, 7.5, 12.0]
    means, variances = [0.0] * 4, [0.0] * 4
    talks.add_done_chances(elapsed, spans, means, variances)
    rung = [0.0, 4.2, 9.9, 14.0, 30.0]
    answer_means, answer_variances = [0.0] * 4, [0.0] * 4
    rings.add_answer_chances(rung, spans, 1.5, answer_means, answer_variances)

    for j, span in enumerate(spans):
        done = [talks.done_within(e, span) for e in elapsed]
        assert means[j] == pytest.approx(sum(done))
        assert variances[j] == pytest.approx(sum(p * (1 - p) for p in done))
        answered = [min(1.0, 1.5 * rings.answer_within(r, span)) for r in rung]
        assert answer_means[j] == pytest.approx(sum(answered))
        assert answer_variances[j] == pytest.approx(sum(p * (1 - p) for p in answered))


def test_a_burst_of_answers_scales_the_answer_chances_up() -> None:
    rings = RingTimes(window=1000, recent=150)
    for index in range(1000):
        rings.add(answered=index % 5 == 0, ring_s=10.0 if index % 5 == 0 else 25.0)
    assert rings.answer_scale() == 1.0

    for index in range(150):
        rings.add(answered=index % 2 == 0, ring_s=10.0 if index % 2 == 0 else 25.0)

    assert rings.answer_scale() > 1.5


def test_the_guard_trips_at_the_cap_and_releases_below_it() -> None:
    guard = AbandonGuard(0.03, window_s=3600.0, min_answered=20, resume_ratio=0.9)
    for second in range(97):
        guard.observe_answered(abandoned=False, at_s=float(second))
    assert not guard.tripped(100.0)

    for second in range(3):
        guard.observe_answered(abandoned=True, at_s=100.0 + second)
    assert guard.tripped(103.0)  # 3 / 100

    for second in range(5):
        guard.observe_answered(abandoned=False, at_s=110.0 + second)
    assert guard.tripped(115.0)  # 3 / 105 = 2.86%: above 0.9 x the cap still
    for second in range(30):
        guard.observe_answered(abandoned=False, at_s=120.0 + second)
    assert not guard.tripped(150.0)  # 3 / 135 = 2.2%


def test_the_guard_needs_enough_answered_calls_to_speak() -> None:
    guard = AbandonGuard(0.03, min_answered=20)
    guard.observe_answered(abandoned=True, at_s=0.0)

    assert not guard.tripped(1.0)
    assert guard.abandon_rate(1.0) == 1.0


def test_the_guard_forgets_calls_older_than_its_window() -> None:
    guard = AbandonGuard(0.03, window_s=600.0, min_answered=1)
    guard.observe_answered(abandoned=True, at_s=0.0)
    assert guard.tripped(10.0)

    guard.observe_answered(abandoned=False, at_s=500.0)

    assert not guard.tripped(700.0)
    assert guard.abandon_rate(1200.0) is None


# ---------------------------------------------------------------------------------------- layout

PURE_CALLING = [
    "dialer/calling/pacing_stats.py",
    "dialer/calling/predictive.py",
    "dialer/calling/simworld.py",
    "dialer/calling/simpbx.py",
    "dialer/calling/virtual_time.py",
]


def imported_modules(relative: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse((REPO / relative).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_calling_modules_import_only_the_standard_library_and_dialer() -> None:
    offenders = [
        f"{relative} imports {name}"
        for relative in PURE_CALLING
        for name in imported_modules(relative)
        # _typeshed: type-checking only (virtual_time's selector signatures)
        if name.split(".")[0] not in (*sys.stdlib_module_names, "dialer", "_typeshed")
    ]
    assert offenders == []


def test_the_pacers_never_import_the_simulation() -> None:
    simulation = {"dialer.calling.simworld", "dialer.calling.simpbx", "dialer.calling.virtual_time"}
    for relative in (
        "dialer/calling/predictive.py",
        "dialer/calling/pacing_stats.py",
        "dialer/calling/abandon.py",
    ):
        assert imported_modules(relative) & simulation == set()
