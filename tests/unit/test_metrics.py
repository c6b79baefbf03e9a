"""The Metrics object: what it exports, and how its counters move."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from dialer.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "config" / "prometheus" / "alerts.yml"
NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.render().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def exported_names(metrics: Metrics) -> set[str]:
    return {name for name, _ in samples(metrics)} | {
        line.split()[2] for line in metrics.render().decode().splitlines() if line[:6] == "# TYPE"
    }


def test_every_metric_is_exported_with_the_outreach_prefix() -> None:
    names = exported_names(Metrics())
    assert {
        "outreach_calls_originated_total",
        "outreach_calls_in_flight",
        "outreach_calls_finished_total",
        "outreach_calls_abandoned_total",
        "outreach_call_abandon_ratio",
        "outreach_ami_connected",
        "outreach_ami_reconnects_total",
        "outreach_ami_event_lag_seconds",
        "outreach_events_received_total",
        "outreach_sms_queued_total",
        "outreach_sms_sent_total",
        "outreach_sms_delivered_total",
        "outreach_sms_failed_total",
        "outreach_sms_dead_total",
        "outreach_sms_provider_latency_seconds",
        "outreach_outbox_depth",
        "outreach_outbox_oldest_due_age_seconds",
    } <= names
    assert all(name.startswith("outreach_") for name in names)


def test_two_metrics_objects_do_not_share_counts() -> None:
    one, other = Metrics(), Metrics()
    one.sms_queued.labels(stage="shipped").inc()
    assert value(one, "outreach_sms_queued_total", stage="shipped") == 1
    assert value(other, "outreach_sms_queued_total", stage="shipped") is None


def test_finished_calls_count_by_outcome_and_set_the_abandon_ratio() -> None:
    metrics = Metrics()
    for outcome in ["answered", "answered", "answered", "abandoned", "busy"]:
        metrics.call_finished("refusal", outcome)
    assert value(metrics, "outreach_calls_finished_total", campaign="refusal", outcome="answered")
    assert value(metrics, "outreach_calls_finished_total", campaign="refusal", outcome="busy") == 1
    assert value(metrics, "outreach_calls_abandoned_total", campaign="refusal") == 1
    assert value(metrics, "outreach_call_abandon_ratio", campaign="refusal") == 0.25


def test_the_link_sets_connected_and_counts_reconnects_once() -> None:
    metrics = Metrics()
    metrics.on_link_change(logged_in=True, reconnects=0)
    assert value(metrics, "outreach_ami_connected") == 1
    metrics.on_link_change(logged_in=False, reconnects=0)
    assert value(metrics, "outreach_ami_connected") == 0
    metrics.on_link_change(logged_in=True, reconnects=1)
    metrics.on_link_change(logged_in=True, reconnects=1)
    assert value(metrics, "outreach_ami_connected") == 1
    assert value(metrics, "outreach_ami_reconnects_total") == 1


def test_event_lag_is_observed_from_the_timestamp_header_and_skipped_without_it() -> None:
    metrics = Metrics()
    metrics.observe_event({"Event": "Hangup", "Timestamp": f"{NOW.timestamp() - 0.2:.6f}"}, NOW)
    metrics.observe_event({"Event": "Hangup"}, NOW)
    metrics.observe_event({"Event": "Hangup", "Timestamp": "garbage"}, NOW)
    assert value(metrics, "outreach_ami_event_lag_seconds_count") == 1
    assert value(metrics, "outreach_ami_event_lag_seconds_bucket", le="0.1") == 0
    assert value(metrics, "outreach_ami_event_lag_seconds_bucket", le="0.25") == 1


def test_delivery_reports_count_delivered_and_failed_by_stage_and_provider() -> None:
    metrics = Metrics()
    metrics.delivery_reported("delivered", "shipped", "twilio")
    metrics.delivery_reported("undelivered", "shipped", "twilio")
    metrics.delivery_reported("failed", "shipped", None)
    metrics.delivery_reported("sent", "shipped", "twilio")
    labels = {"stage": "shipped", "provider": "twilio"}
    assert value(metrics, "outreach_sms_delivered_total", **labels) == 1
    assert value(metrics, "outreach_sms_failed_total", **labels) == 1
    assert value(metrics, "outreach_sms_failed_total", stage="shipped", provider="none") == 1


def alert_metric_names() -> set[str]:
    rules = YAML(typ="safe").load(ALERTS.read_text(encoding="utf-8"))
    names: set[str] = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            names.update(re.findall(r"\boutreach_[a-z_]+", rule["expr"]))
    return names


def test_every_metric_an_alert_uses_is_exported() -> None:
    used = alert_metric_names()
    metrics = Metrics()
    metrics.call_finished("refusal", "answered")
    metrics.sms_dead.labels(stage="shipped", provider="twilio").inc()
    assert len(used) >= 4
    assert used - exported_names(metrics) == set()


def test_agent_measures_of_an_outbound_campaign_become_gauges() -> None:
    metrics = Metrics()
    measures = {
        "occupancy": 0.9,
        "agent_idle_s_mean": 21.5,
        "answer_rate": 0.25,
        "calls_per_agent_hour": 80.0,
        "connects_per_agent_hour": None,  # nothing measured yet: no sample
        "fell_back": True,
        "abandon_rule": {"abandon_rate": 0.012, "max_rate": 0.03},
    }

    metrics.set_agent_measures("proactive", measures)

    def measure(name: str) -> float | None:
        return value(metrics, "outreach_agent_measure", campaign="proactive", measure=name)

    assert measure("occupancy") == 0.9
    assert measure("agent_idle_s_mean") == 21.5
    assert measure("abandon_rate") == 0.012
    assert measure("fell_back") == 1.0
    assert measure("connects_per_agent_hour") is None
