"""`pdcaflow bench inbox` on a small table: fills, times, and reports the JSON figures."""

from __future__ import annotations

import json

from click.testing import CliRunner

from benchmarks.inbox import BENCH_USER, task_groups, user_groups
from web.cli import main

TASKS = 2000


def _open_in_groups_of_bench_user(n_tasks: int) -> int:
    """Open (unclaimed) tasks the fill puts into the bench user's groups: what the timed query must return."""
    groups = set(user_groups(BENCH_USER))
    # every tenth task is open or claimed; of those, (i // 10) % 10 < 3 are claimed
    return sum(1 for i in range(0, n_tasks, 10) if (i // 10) % 10 >= 3 and set(task_groups(i)) & groups)


def test_inbox_bench_small_json():
    result = CliRunner().invoke(main, ["bench", "inbox", "--tasks", str(TASKS), "--reps", "5", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["db"] == "sqlite" and figures["tasks"] == TASKS and figures["open"] == TASKS // 10
    # one name per figure: p50_ms/p95_ms are the page (README), the query and "mine" tab are prefixed;
    # cpu_ is the page's CPU time in the bench process
    timings = {k for k in figures if k.endswith("_ms")}
    assert timings == {"p50_ms", "p95_ms", "query_p50_ms", "query_p95_ms", "mine_p50_ms", "mine_p95_ms",
                       "search_name_p95_ms", "search_reference_p95_ms", "cpu_p50_ms", "cpu_p95_ms"}
    # the searches find the case they look for (a customer's name and a reference the user sees)
    assert figures["search_name_rows"] >= 1 and figures["search_reference_rows"] >= 1
    for prefix in ("", "query_", "mine_", "cpu_"):
        assert 0 < figures[f"{prefix}p50_ms"] <= figures[f"{prefix}p95_ms"], prefix
    # the timed queries return the rows the fill made for the bench user, so they measure real work
    assert figures["query_rows"] == _open_in_groups_of_bench_user(TASKS) > 0
    assert figures["mine_rows"] == 1  # the one task claimed by u00042 (i = 420)
