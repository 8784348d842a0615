"""`pdcaflow bench external-tasks` runs real server and worker processes and reports a rate (tiny n;
the figure itself is not asserted, that every task was completed exactly once is)."""

from __future__ import annotations

from benchmarks.external_tasks import run_external_task_bench
from tests.conftest import skip_or_fail


def test_external_task_bench_sqlite():
    result = run_external_task_bench(30, workers=2, servers=1)
    assert result["completed"] == 30 and result["errors"] == 0 and result["completed_once"] is True
    assert result["tasks_per_s"] > 0


def test_external_task_bench_batched_fetches_and_the_bare_request_ceiling():
    result = run_external_task_bench(24, workers=2, servers=1, max_tasks=10, ceiling=True)
    assert result["max_tasks"] == 10 and result["completed"] == 24 and result["completed_once"] is True
    assert result["errors"] == 0 and result["bare_errors"] == 0 and result["bare_round_trips_per_s"] > 0
    assert result["server_cpu_ms_per_task"] > 0 and result["worker_cpu_ms_per_task"] > 0


def test_external_task_bench_postgresql(pg_database):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    result = run_external_task_bench(40, pg_database, workers=3, servers=2)
    assert result["db"] == "postgresql" and result["completed"] == 40 and result["completed_once"] is True
