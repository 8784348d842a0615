"""`pdcaflow bench kpis`: the dashboard for one year over N closed complaints and 3N actions.

Fact rows are inserted directly in bulk (driving 100,000 instances through the engine would take
hours), then the rollups are counted from them as the first refresh after an upgrade does; the timed
part is the full dashboard page (GET /dashboard for the year, signed in as a quality lead through the
Flask test client): sign-in check, every KPI query (this year and the tiles' previous year), charts,
heat map, filter options, template — what the user waits for, less the network.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from engine.accounts import save_user
from engine.kpi_rules import RULES
from storage.db import Database
from storage.kpi_facts import ActionFact, ComplaintFact, TaskFact
from storage.kpi_rollups import rebuild_action_rollup, rebuild_complaint_rollup
from storage.migrate import upgrade

CATEGORIES = ["product_quality", "delivery", "service", "billing", "documentation", "safety", "other"]
STEPS = [("acknowledge", "Acknowledge the customer"), ("triage", "Triage the complaint"),
         ("rca_analyse", "Find the root cause"), ("rca_check", "Check whether the fix worked")]


def _seed(db: Database, n: int, end: datetime, rng: random.Random) -> None:
    batch: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []

    def flush() -> None:
        with db.write() as s:
            for table, rows in ((ComplaintFact, batch), (ActionFact, actions), (TaskFact, tasks)):
                if rows:
                    s.execute(insert(table), rows)
        batch.clear()
        actions.clear()
        tasks.clear()

    for i in range(n):
        received = end - timedelta(seconds=rng.randint(3600 * 24 * 2, 3600 * 24 * 365))
        ack = received + timedelta(hours=rng.expovariate(1 / 12))
        closed = received + timedelta(days=rng.uniform(1, 40))
        loops = rng.choices([0, 1, 2], weights=[7, 2, 1])[0]
        iid = f"b{i:09d}"
        batch.append({"instance_id": iid, "process_key": "complaint_to_improvement", "kind": "complaint",
                      "reference": f"CMP-{i}", "instance_status": "completed", "status": "closed",
                      "received_at": received, "acknowledged_at": ack, "ack_seconds": (ack - received).total_seconds(),
                      "closed_at": closed, "close_seconds": (closed - received).total_seconds(),
                      "category": rng.choice(CATEGORIES), "severity": rng.choice(["critical", "major", "minor"]),
                      "product": f"P-{rng.randint(1, 50)}", "customer": f"Customer {rng.randint(1, 2000)}",
                      "valid": True, "rca_loops": loops, "effective_first_check": loops == 0, "effective": True,
                      "root_cause": f"Cause {rng.randint(1, 40)}", "csat": rng.randint(1, 5),
                      "nps": rng.randint(0, 10), "survey_status": "answered"})
        for j in range(3):
            due = (received + timedelta(days=14 + j)).date()
            done = due + timedelta(days=rng.randint(-10, 5))
            actions.append({"instance_id": iid, "action_id": f"1-{j + 1}", "round": 1, "owner": f"owner{j}",
                            "due_on": due, "done_on": done, "effective": loops == 0,
                            # the scope copies the refresh writes (storage/kpi_facts.py)
                            "kind": "complaint", "process_key": "complaint_to_improvement",
                            "instance_status": "completed"})
        spec, name = STEPS[i % len(STEPS)]
        hours = rng.uniform(0.5, 72)
        tasks.append({"task_id": f"t{i:09d}", "instance_id": iid, "process_key": "complaint_to_improvement",
                      "spec_id": spec, "name": name, "state": "completed", "created_at": received,
                      "completed_at": received + timedelta(hours=hours), "seconds": hours * 3600,
                      "kind": "complaint"})
        if len(batch) >= 5000:
            flush()
    flush()
    with db.write() as s:  # what the refresh keeps up to date row by row
        rebuild_action_rollup(s)
        rebuild_complaint_rollup(s, RULES)
    if db.dialect == "postgresql":  # what autovacuum does shortly after a bulk load: statistics, visibility map
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in ("VACUUM ANALYZE complaint_fact", "VACUUM ANALYZE action_fact",
                              "VACUUM ANALYZE task_fact", "VACUUM ANALYZE action_rollup",
                              "VACUUM ANALYZE complaint_rollup"):
                conn.execute(text(statement))


def run_kpi_bench(n: int = 100_000, database_url: str | None = None, runs: int = 20) -> dict[str, Any]:
    from web import create_app

    tmp = tempfile.TemporaryDirectory()
    url = database_url or f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    upgrade(url)
    db = Database(url)
    rng = random.Random(42)
    end = datetime.now(UTC)
    started = time.perf_counter()
    _seed(db, n, end, rng)
    seed_s = time.perf_counter() - started
    save_user(db, "bench.lead", "quality_lead", password="bench-password-1", groups=["quality_lead"])
    app = create_app({"DATABASE": db, "SECRET_KEY": "bench", "TESTING": True, "WTF_CSRF_ENABLED": False,
                      "INSTANCE_DIR": tmp.name})
    client = app.test_client()
    client.post("/login", data={"username": "bench.lead", "password": "bench-password-1"})
    today = end.date()
    path = f"/dashboard?from={today - timedelta(days=364)}&to={today}"
    first = client.get(path)
    assert first.status_code == 200, first.status_code
    timings = []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200
    timings.sort()
    api = client.get(path.replace("/dashboard", "/api/v1/kpis"))  # 401 without a token: not timed
    db.dispose()
    tmp.cleanup()
    return {"bench": "kpis", "db": "postgresql" if url.startswith("postgresql") else "sqlite",
            "complaints": n, "actions": 3 * n, "runs": runs, "seed_s": round(seed_s, 1),
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[min(len(timings) - 1, int(0.95 * len(timings)))], 1),
            "max_ms": round(timings[-1], 1), "period_days": 365, "api_status_without_token": api.status_code,
            "date": date.today().isoformat()}
