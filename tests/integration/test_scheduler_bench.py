"""`pdcaflow bench timers` runs and reports a rate (tiny n; the figure itself is not asserted)."""

from __future__ import annotations

from benchmarks.timers import run_timer_bench
from tests.conftest import skip_or_fail


def test_timer_bench_sqlite():
    result = run_timer_bench(20)
    assert result["fired"] == 20 and result["timers_per_s"] > 0


def test_timer_bench_postgresql_two_processes(pg_database):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    result = run_timer_bench(60, pg_database)
    assert result["db"] == "postgresql" and result["fired"] == 60
    assert result["fired_2proc"] == 60 and result["fired_once_2proc"] is True
    assert result["timers_per_s_2proc"] > 0
