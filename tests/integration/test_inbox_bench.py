"""`pdcaflow bench inbox` on a small table: fills, times, and reports the JSON figures."""

from __future__ import annotations

import json

from click.testing import CliRunner

from web.cli import main


def test_inbox_bench_small_json():
    result = CliRunner().invoke(main, ["bench", "inbox", "--tasks", "2000", "--reps", "5", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["db"] == "sqlite" and figures["tasks"] == 2000 and figures["open"] == 200
    for key in ("p50_ms", "p95_ms", "query_p50_ms", "query_p95_ms", "mine_p50_ms", "page_p50_ms", "page_p95_ms"):
        assert figures[key] > 0, key
    assert figures["p95_ms"] == figures["page_p95_ms"] and figures["query_rows"] > 0
