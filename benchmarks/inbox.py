"""`pdcaflow bench inbox`: the inbox query and the inbox page on a large task table.

Fills the database directly (SQLAlchemy Core executemany, in chunks; the case search index is
kept by its triggers / GIN index as for any write) with N human tasks — a tenth of them open or
claimed (a fifth of those undated, about a quarter overdue), the rest completed — spread over 500
candidate groups and 5,000 users, on fake process instances with tiny state blobs. Then times
`Runtime.tasks` for a typical employee in 2-3 groups (the "my groups" and "mine" tabs) and the whole
inbox page (Flask test client, signed in), many repetitions each. Progress goes to stderr.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from werkzeug.security import generate_password_hash

from engine.cases import case_columns
from engine.runtime import Runtime
from engine.views import Actor
from storage.db import Database
from storage.models import (
    Group,
    HumanTask,
    HumanTaskGroup,
    ProcessDefinition,
    ProcessInstance,
    User,
    UserGroup,
)

GROUPS = 500
USERS = 5000
TASKS_PER_INSTANCE = 4
CHUNK = 10_000
PASSWORD = "bench-inbox-password"
KEY = "bench_inbox"
BENCH_USER = 42  # u00042: groups g042, g295 (2 groups; even users get a third)


def _user(k: int) -> str:
    return f"u{k:05d}"


def _group(k: int) -> str:
    return f"g{k:03d}"


def user_groups(k: int) -> list[str]:
    """Every user is in 2 groups, every other user in 3."""
    names = {_group(k % GROUPS), _group((k * 7 + 1) % GROUPS)}
    if k % 2 == 0:
        names.add(_group((k * 13 + 2) % GROUPS))
    return sorted(names)


def task_groups(i: int) -> list[str]:
    """Every task has one candidate group, every third task two."""
    mixed = (i * 2654435761) >> 7  # spread open tasks (every tenth) over all groups
    names = {_group(mixed % GROUPS)}
    if i % 3 == 0:
        names.add(_group((mixed // GROUPS) % GROUPS))
    return sorted(names)


def open_task_due(i: int, now: datetime) -> datetime | None:
    """The due date of open task i: one in five undated, the others due from ten days ago to thirty
    days ahead (about a quarter overdue), as in a working inbox."""
    if (i // 10) % 5 == 4:
        return None
    return now + timedelta(days=(i // 10) % 40 - 10, minutes=i % 1440)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples) * 1000, 2),
            "p95_ms": round(_percentile(samples, 0.95) * 1000, 2)}


def _chunks(rows_of: Callable[[int], dict[str, Any]], start: int, stop: int):  # type: ignore[no-untyped-def]
    for begin in range(start, stop, CHUNK):
        yield [rows_of(i) for i in range(begin, min(stop, begin + CHUNK))]


def fill(db: Database, n_tasks: int, progress: Callable[[str], None]) -> None:
    """Bulk-insert users, groups, one definition, fake instances and n_tasks human tasks."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    password_hash = generate_password_hash(PASSWORD, method="scrypt")
    with db.write_engine.begin() as conn:
        conn.execute(insert(Group), [{"id": k + 1, "name": _group(k)} for k in range(GROUPS)]
                     + [{"id": GROUPS + 1, "name": "employee"}])
        conn.execute(insert(User), [{"id": k + 1, "username": _user(k), "password_hash": password_hash,
                                     "role": "employee", "email": None, "active": True, "created_at": now}
                                    for k in range(USERS)])
        memberships = [{"user_id": k + 1, "group_id": int(g[1:]) + 1} for k in range(USERS) for g in user_groups(k)]
        memberships += [{"user_id": k + 1, "group_id": GROUPS + 1} for k in range(USERS)]
        conn.execute(insert(UserGroup), memberships)
        conn.execute(insert(ProcessDefinition), [{
            "id": 1, "key": KEY, "version": 1, "kind": "bpmn", "name": "Bench inbox", "source_name": "bench.bpmn",
            "xml": "<definitions/>", "content_hash": "0" * 64, "spec_json": None, "dependencies": [],
            "deployed_at": now, "deployed_by": "bench"}])
    progress(f"users {USERS}, groups {GROUPS}")

    n_instances = (n_tasks + TASKS_PER_INSTANCE - 1) // TASKS_PER_INSTANCE
    started = now - timedelta(days=400)

    def instance_row(j: int) -> dict[str, Any]:
        data = {"customer_name": f"Customer {j:07d}", "product": f"Product {j % 97}"}
        return {"id": f"{j:032x}", "definition_id": 1, "process_key": KEY, "process_version": 1,
                "business_key": f"B-{j}", "status": "running", "state": b"{}", "data": data,
                "started_at": started + timedelta(minutes=j % 500_000), "started_by": "bench", "ended_at": None,
                "version": 1, **case_columns(f"B-{j}", data)}  # as a save writes them (the search index)

    def task_row(i: int) -> dict[str, Any]:
        created = started + timedelta(minutes=i // 2)
        is_open = i % 10 == 0
        claimed = is_open and (i // 10) % 10 < 3
        completer = _user((i * 31 + 7) % USERS)
        if is_open:
            state, assignee = ("claimed", _user((i // 10) % USERS)) if claimed else ("open", None)
        else:
            state, assignee = "completed", completer
        return {
            "id": str(uuid.UUID(int=i + 1)), "instance_id": f"{i // TASKS_PER_INSTANCE:032x}", "process_key": KEY,
            "spec_id": f"task_{i % 7}", "name": f"Task {i % 7}", "state": state, "assignee": assignee,
            "candidate_groups": task_groups(i), "priority": 70 if i % 11 == 0 else 50,
            "due_at": open_task_due(i, now) if is_open else None if i % 5 == 0 else created + timedelta(days=i % 30),
            "follow_up_at": None,
            "form": [], "documentation": None, "created_at": created,
            "claimed_at": created if assignee else None,
            "completed_at": None if is_open else created + timedelta(days=1),
            "completed_by": None if is_open else completer, "submitted": None if is_open else {}}

    def group_rows(begin: int, stop: int) -> list[dict[str, Any]]:
        return [{"task_id": str(uuid.UUID(int=i + 1)), "group_name": g} for i in range(begin, stop)
                for g in task_groups(i)]

    t0 = time.perf_counter()
    done = 0
    for rows in _chunks(instance_row, 0, n_instances):
        with db.write_engine.begin() as conn:
            conn.execute(insert(ProcessInstance), rows)
        done += len(rows)
        if done % (CHUNK * 10) == 0 or done == n_instances:
            progress(f"instances {done}/{n_instances} ({time.perf_counter() - t0:.0f}s)")
    done = 0
    for begin in range(0, n_tasks, CHUNK):
        stop = min(n_tasks, begin + CHUNK)
        with db.write_engine.begin() as conn:
            conn.execute(insert(HumanTask), [task_row(i) for i in range(begin, stop)])
            conn.execute(insert(HumanTaskGroup), group_rows(begin, stop))
        done = stop
        if done % (CHUNK * 10) == 0 or done == n_tasks:
            progress(f"tasks {done}/{n_tasks} ({time.perf_counter() - t0:.0f}s)")
    if db.dialect == "postgresql":
        with db.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.write_engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    progress(f"filled in {time.perf_counter() - t0:.0f}s")


def _time(fn: Callable[[], Any], reps: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of each of `reps` calls; with `cpu`, also this process's CPU seconds of each
    (on a shared machine the wall clock also measures the other processes; the CPU time of a SQLite
    page is the page's own work, PostgreSQL's server time excluded)."""
    fn()  # warm caches and statement compilation
    samples = []
    for _ in range(reps):
        c = time.process_time()
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(time.process_time() - c)
    return samples


def _signed_in_client(runtime: Runtime, username: str, instance_dir: str) -> Any:
    import re

    from web import create_app

    app = create_app({"RUNTIME": runtime, "DATABASE": runtime.db, "SECRET_KEY": "bench-inbox",
                      "INSTANCE_DIR": instance_dir})
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": token.group(1) if token else ""})
    if response.status_code != 302:
        raise RuntimeError(f"bench sign-in failed: {response.status_code}")
    return client


def run_inbox_bench(n_tasks: int = 1_000_000, url: str | None = None, reps: int = 200,
                    progress: Callable[[str], None] | None = None, refill: bool = True) -> dict[str, Any]:
    """With `refill=False` and a URL, time a database an earlier run filled (with the same n_tasks)."""
    say = progress or (lambda text: print(text, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        try:
            db.create_all()
            if refill or not url:
                if url:
                    db.truncate_all()
                fill(db, n_tasks, say)
            runtime = Runtime(db)
            username = _user(BENCH_USER)
            actor = Actor(username, frozenset(user_groups(BENCH_USER)) | {"employee"}, "employee")
            result: dict[str, Any] = {"bench": "inbox", "db": db.dialect, "tasks": n_tasks,
                                      "open": sum(1 for i in range(0, n_tasks, 10)), "groups": GROUPS,
                                      "users": USERS, "user_groups": len(user_groups(BENCH_USER)), "reps": reps}
            groups_tab = runtime.tasks(actor, state="open")
            mine_tab = runtime.tasks(actor, mine=True)
            result["query_rows"] = len(groups_tab)
            result["mine_rows"] = len(mine_tab)
            say(f"timing the inbox query ({reps} repetitions)")
            query = _stats(_time(lambda: runtime.tasks(actor, state="open"), reps))
            mine = _stats(_time(lambda: runtime.tasks(actor, mine=True), reps))
            # searches (engine/cases.py): a customer's name and a reference of a case the user sees
            case = groups_tab[0].case if groups_tab else None
            name = (case or {}).get("customer") or "Customer"
            reference = (case or {}).get("reference") or "B-1"
            result["search_name_rows"] = len(runtime.tasks(actor, state="open", q=name))
            result["search_reference_rows"] = len(runtime.tasks(actor, state="open", q=reference))
            say(f"timing searches by customer name and reference ({reps} repetitions)")
            by_name = _stats(_time(lambda: runtime.tasks(actor, state="open", q=name), reps))
            by_ref = _stats(_time(lambda: runtime.tasks(actor, state="open", q=reference), reps))
            client = _signed_in_client(runtime, username, tmp)

            def page() -> None:
                response = client.get("/inbox?tab=groups")
                if response.status_code != 200:
                    raise RuntimeError(f"inbox page answered {response.status_code}")

            say(f"timing the inbox page ({reps} repetitions)")
            page_cpu: list[float] = []
            page_stats = _stats(_time(page, reps, page_cpu))
            cpu_stats = _stats(page_cpu)
            # p50_ms/p95_ms (unprefixed) are the whole page, as the README documents
            result.update({"query_p50_ms": query["p50_ms"], "query_p95_ms": query["p95_ms"],
                           "mine_p50_ms": mine["p50_ms"], "mine_p95_ms": mine["p95_ms"],
                           "search_name_p95_ms": by_name["p95_ms"], "search_reference_p95_ms": by_ref["p95_ms"],
                           "cpu_p50_ms": cpu_stats["p50_ms"], "cpu_p95_ms": cpu_stats["p95_ms"], **page_stats})
            return result
        finally:
            db.dispose()
