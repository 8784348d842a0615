"""`pdcaflow bench http` runs two real gunicorn servers (PDCA Flow and a bare Flask endpoint, the
settings `pdcaflow serve` uses) and client processes, and reports rates (tiny n; the figures
themselves are not asserted, that every task was completed exactly once and every request answered
200 is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.http_completion import run_http_bench
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


def _ok(result: dict, n: int) -> None:
    assert result["n"] == n and result["completed_once"] is True
    assert result["completion_statuses"] == {"200": n}
    assert result["completions_per_s"] > 0 and result["bare_per_s"] > 0
    assert 0 < result["ratio_to_bare"] and result["completion_p95_ms"] >= result["completion_p50_ms"] > 0


def test_http_bench_sqlite_through_the_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PDCAFLOW_INSTANCE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "web.cli", "bench", "http", "--n", "24", "--clients", "3", "--json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "http" and result["db"] == "sqlite" and result["clients"] == 3
    _ok(result, 24)


def test_http_bench_postgresql(pg_database):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    result = run_http_bench(30, pg_database, clients=4)
    assert result["db"] == "postgresql"
    _ok(result, 30)
