"""`GET /metrics`: Prometheus' text format.

Two kinds of figures, each kept where it is correct with several processes:
- about the work (tasks created/completed, outbox backlog, open incidents, due timers, open external
  tasks, timer lateness): read from the database at scrape time (engine/metrics.py), so whichever
  gunicorn worker answers, every worker, scheduler and CLI process is counted, and restarts lose
  nothing. Task counts are counters because rows are only added; the rest are gauges.
- about requests (latency by endpoint, method and status): observed in the web process serving each
  request. `pdcaflow serve` runs several worker processes and a scrape reaches one of them, so there
  prometheus-client's multiprocess mode sums every worker's files in PROMETHEUS_MULTIPROC_DIR (the
  command sets one up); `pdcaflow run` is one process and keeps them in memory.

Who may scrape: a request with `Authorization: Bearer <PDCAFLOW_METRICS_TOKEN>`, or one made
directly (no `Forwarded`/`X-Forwarded-For` header, i.e. not through the reverse proxy) from an
address in PDCAFLOW_METRICS_ALLOW (default: this machine only). Anyone else gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from engine import metrics
from engine.settings import current as current_settings
from web.context import runtime

bp = Blueprint("metrics", __name__)
disable_created_metrics()  # no `_created` series beside every histogram and counter
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# not registered globally: each scrape builds its registry (below); in multiprocess mode the values
# go to this process's file in PROMETHEUS_MULTIPROC_DIR whatever the registry
REQUEST_LATENCY = Histogram(
    "pdcaflow_http_request_duration_seconds", "Time to answer an HTTP request, by Flask endpoint, method and status",
    ["endpoint", "method", "status"], registry=None,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


_SERIES: dict[tuple[str | None, str, int], Any] = {}  # the histogram's child per label set (labels() is dear)


def observe_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    """One answered request (web/observability.py). Labels stay few: the endpoint name, not the path."""
    key = (endpoint, method if method in METHODS else "other", status)  # bounded: any method not known is "other"
    series = _SERIES.get(key)
    if series is None:  # a race here only builds the same child twice
        series = _SERIES[key] = REQUEST_LATENCY.labels(endpoint or "unmatched", key[1], str(status))
    series.observe(seconds)


class _WorkCollector:
    """The database's figures as Prometheus metrics, read once per scrape."""

    def __init__(self, snapshot: metrics.Snapshot) -> None:
        self.s = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.s
        yield CounterMetricFamily("pdcaflow_tasks_created", "Human tasks created", value=s.tasks_created)
        yield CounterMetricFamily("pdcaflow_tasks_completed", "Human tasks completed", value=s.tasks_completed)
        yield GaugeMetricFamily("pdcaflow_outbox_pending", "E-mails waiting in the outbox (incl. retries)",
                                value=s.outbox_pending)
        yield GaugeMetricFamily("pdcaflow_incidents_open", "Unresolved incidents", value=s.incidents_open)
        yield GaugeMetricFamily("pdcaflow_timers_due", "Timers due and not fired yet", value=s.timers_due)
        topics = GaugeMetricFamily("pdcaflow_external_tasks_open", "External tasks waiting for or held by a worker",
                                   labels=["topic"])
        for topic, n in sorted(s.external_tasks_open.items()):
            topics.add_metric([topic], n)
        yield topics
        lateness = HistogramMetricFamily("pdcaflow_timer_lateness_seconds",
                                         "Seconds between a timer's due time and its firing (all schedulers)")
        lateness.add_metric([], s.timer_lateness.buckets, s.timer_lateness.total)
        yield lateness


def _refusal() -> str | None:
    """Why this request may not read the metrics, or None when it may."""
    settings = current_settings()
    auth = request.headers.get("Authorization", "")
    if settings.metrics_token and auth.startswith("Bearer ") and hmac.compare_digest(
            auth.removeprefix("Bearer ").strip().encode(), settings.metrics_token.encode()):
        return None
    if request.headers.get("Forwarded") or request.headers.get("X-Forwarded-For"):
        return "metrics are not served through a proxy without the metrics token"
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return "unknown client address"
    if any(address in ipaddress.ip_network(net) for net in settings.metrics_allow):
        return None
    return "this address may not read the metrics (PDCAFLOW_METRICS_ALLOW, PDCAFLOW_METRICS_TOKEN)"


@bp.get("/metrics")
def scrape() -> Any:
    refusal = _refusal()
    if refusal is not None:
        response = jsonify(error={"code": "forbidden", "message": refusal, "details": []})
        response.status_code = 403
        return response
    registry = CollectorRegistry()
    if current_settings().metrics_dir is not None:
        multiprocess.MultiProcessCollector(registry)  # every worker's request figures
    else:
        registry.register(REQUEST_LATENCY)
    registry.register(_WorkCollector(metrics.snapshot(runtime().db)))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
