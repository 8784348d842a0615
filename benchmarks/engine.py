"""`pdcaflow bench engine`: raw SpiffWorkflow in memory vs. PDCA Flow's persisted runtime.

Both sides run the same process (start -> user task with a form -> exclusive gateway -> user task
-> end) with the same script engine; the persisted side loads and saves every step through the
database, as a web request would.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import event

from benchmarks.database import bench_database
from engine.bpmn_parser import PdcaParser
from engine.runtime import Runtime
from engine.sandbox import SandboxScriptEngine
from engine.views import Actor
from storage.db import Database

BENCH_PROCESS = Path(__file__).parent / "resources" / "bench_review.bpmn"
KEY = "bench_review"


def _raw(n: int) -> float:
    parser = PdcaParser()
    parser.add_bpmn_file(str(BENCH_PROCESS))
    spec, subs = parser.get_spec(KEY), parser.get_subprocess_specs(KEY)
    engine = SandboxScriptEngine()
    started = time.perf_counter()
    for i in range(n):
        workflow = BpmnWorkflow(spec, subs, script_engine=engine)
        workflow.do_engine_steps()
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        task.data.update({"amount": 50 + (i % 100) * 2, "urgent": False})
        task.run()
        workflow.do_engine_steps()
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        task.data.update({"decision": "approve"})
        task.run()
        workflow.do_engine_steps()
        assert workflow.is_completed()
    return time.perf_counter() - started


def _persisted(n: int, db: Database, progress: Callable[[int], None] | None) -> float:
    runtime = Runtime(db)
    runtime.deploy_paths([BENCH_PROCESS])
    lead = Actor("bench.lead", frozenset({"quality_lead", "reviewers"}), "quality_lead")
    started = time.perf_counter()
    for i in range(n):
        instance = runtime.start(KEY, {"reference": f"B-{i}"}, lead)
        task = next(t for t in instance.tasks if t.state in ("open", "claimed"))
        # history=False: what the inbox's completion asks for (the next tasks, not the audit trail)
        instance = runtime.complete(task.id, lead, {"amount": str(50 + (i % 100) * 2), "urgent": "false"},
                                    history=False)
        task = next(t for t in instance.tasks if t.state in ("open", "claimed"))
        decision = {"decision": "approve"} if task.form else {}
        instance = runtime.complete(task.id, lead, decision, history=False)
        assert instance.status == "completed", instance.status
        if progress and (i + 1) % max(1, n // 20) == 0:
            progress(i + 1)
    return time.perf_counter() - started


def run_engine_bench(n: int, url: str | None = None, progress: Callable[[int], None] | None = None,
                     rounds: int = 3) -> dict[str, Any]:
    """Median of `rounds` alternating rounds, so machine drift hits both sides alike."""
    with tempfile.TemporaryDirectory() as tmp:
        db = bench_database(url, tmp)
        _raw(min(50, n))  # warm-up: imports, caches
        statements = [0]

        def count(*_args: Any) -> None:
            statements[0] += 1

        engines = {db.engine, db.write_engine}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        raw_times, db_times = [], []
        per_round = max(1, n // rounds)
        for _ in range(rounds):
            raw_times.append(_raw(per_round) / per_round)
            db_times.append(_persisted(per_round, db, progress) / per_round)
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
        dialect = db.dialect
        db.dispose()
    raw_ms = statistics.median(raw_times) * 1000
    db_ms = statistics.median(db_times) * 1000
    return {
        "bench": "engine",
        "n": per_round * rounds,
        "db": dialect,
        "raw_ms_per_instance": round(raw_ms, 3),
        "persisted_ms_per_instance": round(db_ms, 3),
        "ratio": round(db_ms / raw_ms, 3),
        # SQL statements sent per instance (start + 2 completions, 3 units of work); the deploy in
        # each round adds a few, COMMIT is not counted (it is not a cursor statement)
        "statements_per_instance": round(statements[0] / (per_round * rounds), 2),
        "goal_ratio": 3.0,  # issue #15: persisted engine at most 3x raw SpiffWorkflow
    }
