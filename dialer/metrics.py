"""Prometheus metrics: one `Metrics` object per daemon, with its own registry (no globals).

`app.build()` makes one; it reaches the campaign runners, the SMS intake, dispatcher and
callbacks through `Resources.metrics`, and `GET /metrics` renders it (`render()`). The outbox
gauges are set at scrape time from the store (`set_backlog`, called by `dialer.app`). Only this
module imports
prometheus_client. Metric names and labels are listed in README (Metrics and alerts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

__all__ = ["CONTENT_TYPE", "NO_PROVIDER", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""`text/plain; version=0.0.4; charset=utf-8`: Prometheus' text exposition format."""

NO_PROVIDER = "none"
"""The `provider` label of a message that died before any provider was called."""

_LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_AGENT_WAIT_BUCKETS_S = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
_AGENT_MEASURES = (
    "occupancy",
    "agent_idle_s_mean",
    "answer_rate",
    "calls_per_agent_hour",
    "connects_per_agent_hour",
)
_LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class _AbandonCounts:
    answered: int = 0
    abandoned: int = 0


class Metrics:
    """Every metric the daemon exports, as typed attributes of one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Calls
        self.calls_originated = Counter(
            "outreach_calls_originated", "Originates sent to the PBX.", ["campaign"], registry=r
        )
        self.calls_refused = Counter(
            "outreach_calls_refused",
            "Originates the PBX refused (not placed, not an attempt; the campaign backs off).",
            ["campaign"],
            registry=r,
        )
        self.calls_in_flight = Gauge(
            "outreach_calls_in_flight",
            "Calls placed and not settled yet.",
            ["campaign"],
            registry=r,
        )
        self.calls_finished = Counter(
            "outreach_calls_finished",
            "Calls settled, by outcome.",
            ["campaign", "outcome"],
            registry=r,
        )
        self.calls_abandoned = Counter(
            "outreach_calls_abandoned",
            "Calls answered with no agent in time: never (outcome abandoned) or after 2 s.",
            ["campaign"],
            registry=r,
        )
        self.call_agent_wait = Histogram(
            "outreach_call_agent_wait_seconds",
            "From the answer to an agent taking the call (calls into an agent queue).",
            ["campaign"],
            buckets=_AGENT_WAIT_BUCKETS_S,
            registry=r,
        )
        self.call_abandon_ratio = Gauge(
            "outreach_call_abandon_ratio",
            "Abandoned / (answered + abandoned) since the daemon started.",
            ["campaign"],
            registry=r,
        )
        # AMI
        self.ami_connected = Gauge(
            "outreach_ami_connected", "1 while logged in to the AMI, else 0.", registry=r
        )
        self.ami_reconnects = Counter(
            "outreach_ami_reconnects", "AMI logins after a lost link.", registry=r
        )
        self.ami_event_lag = Histogram(
            "outreach_ami_event_lag_seconds",
            "Now minus the Timestamp header of an AMI event (timestampevents = yes).",
            buckets=_LAG_BUCKETS_S,
            registry=r,
        )
        self.component_healthy = Gauge(
            "outreach_component_healthy",
            "0 while a component waits for a dependency (the store), else 1.",
            ["component"],
            registry=r,
        )
        # Config reloads
        self.config_reloads = Counter(
            "outreach_config_reloads",
            "Config reloads (SIGHUP, POST /v1/reload), applied or refused.",
            ["result"],
            registry=r,
        )
        self.config_last_reload_successful = Gauge(
            "outreach_config_last_reload_successful",
            "0 when the last reload was refused (the running config is older than the file).",
            registry=r,
        )
        self.config_last_reload_successful.set(1)
        # Order events and SMS
        self.events_received = Counter(
            "outreach_events_received", "Order events accepted.", ["stage"], registry=r
        )
        self.sms_queued = Counter(
            "outreach_sms_queued", "Messages queued in the outbox.", ["stage"], registry=r
        )
        self.sms_sent = Counter(
            "outreach_sms_sent",
            "Messages a provider accepted.",
            ["stage", "provider"],
            registry=r,
        )
        self.sms_delivered = Counter(
            "outreach_sms_delivered",
            "Delivery reports: delivered.",
            ["stage", "provider"],
            registry=r,
        )
        self.sms_failed = Counter(
            "outreach_sms_failed",
            "Delivery reports: failed or undelivered.",
            ["stage", "provider"],
            registry=r,
        )
        self.sms_held = Counter(
            "outreach_sms_held",
            "Messages held to the next day by the daily limit per number (sent then).",
            ["stage"],
            registry=r,
        )
        self.sms_dead = Counter(
            "outreach_sms_dead",
            "Messages given up on (dead letters).",
            ["stage", "provider"],
            registry=r,
        )
        self.sms_provider_latency = Histogram(
            "outreach_sms_provider_latency_seconds",
            "Time of one call to a provider (success or error).",
            ["provider"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "outreach_outbox_depth", "Messages queued or sending (at scrape time).", registry=r
        )
        self.outbox_oldest_due_age = Gauge(
            "outreach_outbox_oldest_due_age_seconds",
            "Now minus the oldest due next_attempt_at of a queued message; 0 when none is due.",
            registry=r,
        )
        # Outbound campaigns: agents and pacing (set by the runner once in a while)
        self.agent_measure = Gauge(
            "outreach_agent_measure",
            "Outbound campaign measures since the runner started: occupancy, agent_idle_s_mean,"
            " answer_rate, abandon_rate (over the abandon rule's window), calls_per_agent_hour,"
            " connects_per_agent_hour, fell_back (1 while paced progressive by the rule).",
            ["campaign", "measure"],
            registry=r,
        )
        self._abandon: dict[str, _AbandonCounts] = {}
        self._reconnects_seen = 0

    def calls_in_flight_now(self) -> int:
        """Calls placed and not settled, over every campaign."""
        return int(
            sum(
                sample.value
                for metric in self.calls_in_flight.collect()
                for sample in metric.samples
            )
        )

    def render(self) -> bytes:
        """The exposition in Prometheus' text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    # -- calls -------------------------------------------------------------------------------

    def call_finished(
        self,
        campaign: str,
        outcome: str,
        *,
        agent_wait_s: float | None = None,
        late: bool = False,
    ) -> None:
        """A call was settled: count it, and update the campaign's abandon ratio. A call an agent
        took `late` (past the 2 s of the rules) is answered, but abandoned for the ratio."""
        self.calls_finished.labels(campaign=campaign, outcome=outcome).inc()
        if agent_wait_s is not None:
            self.call_agent_wait.labels(campaign=campaign).observe(agent_wait_s)
        if outcome not in ("answered", "abandoned"):
            return
        counts = self._abandon.setdefault(campaign, _AbandonCounts())
        if outcome == "abandoned" or late:
            counts.abandoned += 1
            self.calls_abandoned.labels(campaign=campaign).inc()
        else:
            counts.answered += 1
        ratio = counts.abandoned / (counts.answered + counts.abandoned)
        self.call_abandon_ratio.labels(campaign=campaign).set(ratio)

    # -- config ------------------------------------------------------------------------------

    def set_agent_measures(self, campaign: str, measures: Mapping[str, object]) -> None:
        """The gauges of `outreach_agent_measure` from `OutboundPacing.measures()`."""
        rule = measures.get("abandon_rule")
        values = {
            **{key: measures.get(key) for key in _AGENT_MEASURES},
            "abandon_rate": rule.get("abandon_rate") if isinstance(rule, Mapping) else None,
            "fell_back": 1.0 if measures.get("fell_back") else 0.0,
        }
        for name, value in values.items():
            if isinstance(value, int | float):
                self.agent_measure.labels(campaign=campaign, measure=name).set(value)

    def config_reloaded(self, *, applied: bool) -> None:
        self.config_reloads.labels(result="applied" if applied else "refused").inc()
        self.config_last_reload_successful.set(1 if applied else 0)

    # -- AMI ---------------------------------------------------------------------------------

    def on_link_change(self, *, logged_in: bool, reconnects: int) -> None:
        """AMI link: connected gauge, and one reconnect per login after a loss (`reconnects`
        counts them since start)."""
        self.ami_connected.set(1 if logged_in else 0)
        if logged_in and reconnects > self._reconnects_seen:
            self.ami_reconnects.inc(reconnects - self._reconnects_seen)
        self._reconnects_seen = max(self._reconnects_seen, reconnects)

    def observe_event(self, event: Mapping[str, str], now: datetime) -> None:
        """AMI event handler: the event's lag, when it carries a `Timestamp` header."""
        raw = event.get("Timestamp")
        if not raw:
            return
        try:
            sent_at = float(raw)
        except ValueError:
            return
        self.ami_event_lag.observe(max(0.0, now.timestamp() - sent_at))

    def set_backlog(self, *, depth: int, oldest_due_age_s: float) -> None:
        """The outbox gauges, read from the store at scrape time."""
        self.outbox_depth.set(depth)
        self.outbox_oldest_due_age.set(oldest_due_age_s)

    # -- SMS ---------------------------------------------------------------------------------

    def delivery_reported(self, status: str, stage: str, provider: str | None) -> None:
        """A delivery report moved a message: count delivered, failed and undelivered."""
        labels = {"stage": stage, "provider": provider or NO_PROVIDER}
        if status == "delivered":
            self.sms_delivered.labels(**labels).inc()
        elif status in ("failed", "undelivered"):
            self.sms_failed.labels(**labels).inc()
