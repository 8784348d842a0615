"""What /metrics reports about the work (web/metrics.py exposes it in Prometheus' format).

Everything here is kept in the database, so it is the same whichever process answers the scrape
and survives restarts: counts and backlogs are counted at scrape time (storage/metrics.py), and the
timer-lateness histogram is added to by every scheduler process after its pass (`record_lateness`).
Per-request figures (latency) are per web process and live in web/metrics.py instead.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine import clock
from storage import metrics as store
from storage.db import Database

TIMER_LATENESS = "timer_lateness_seconds"
# seconds a timer fired after its due time; the goal is p99 <= 1.5 s at a 1 s scheduler interval
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, math.inf)


def bucket_name(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


@dataclass
class Histogram:
    """Cumulative bucket counts in `LATENESS_BUCKETS` order, their sum and count."""

    buckets: list[tuple[str, float]] = field(default_factory=list)
    total: float = 0.0
    count: float = 0.0


@dataclass
class Snapshot:
    tasks_created: int
    tasks_completed: int
    outbox_pending: int
    incidents_open: int
    timers_due: int
    external_tasks_open: dict[str, int]
    timer_lateness: Histogram


def lateness_counts(values: Iterable[float]) -> dict[str, float]:
    """Per-bucket (not cumulative) counts of `values`, and their sum under `store.SUM`."""
    counts: dict[str, float] = {}
    total = 0.0
    for value in values:
        value = max(0.0, value)  # fired "early" by the engine's reckoning counts as on time
        bound = LATENESS_BUCKETS[bisect.bisect_left(LATENESS_BUCKETS, value)]
        counts[bucket_name(bound)] = counts.get(bucket_name(bound), 0) + 1
        total += value
    if counts:
        counts[store.SUM] = total
    return counts


def record_lateness(db: Database, values: list[float]) -> None:
    """Add the lateness of timers a pass fired to the shared histogram (one small transaction)."""
    if values:
        with db.write() as session:
            store.add_to_histogram(session, TIMER_LATENESS, lateness_counts(values))


def snapshot(db: Database) -> Snapshot:
    with db.read() as session:
        figures = store.figures(session, clock.now())
        rows = store.histogram(session, TIMER_LATENESS)
    running = 0.0
    buckets = []
    for bound in LATENESS_BUCKETS:
        running += rows.get(bucket_name(bound), 0.0)
        buckets.append((bucket_name(bound), running))
    return Snapshot(timer_lateness=Histogram(buckets, rows.get(store.SUM, 0.0), running), **figures)
