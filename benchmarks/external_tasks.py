"""`pdcaflow bench external-tasks`: external tasks completed per second by N concurrent workers over
`/engine-rest` (each round trip: fetchAndLock of up to `max_tasks` tasks, then complete of each with a
variable). `max_tasks=1` is camunda-external-task-client-python3's default; Camunda's Java client
fetches 10 by default.

N instances wait at an external task (started through the runtime before the stopwatch starts).
`servers` web processes (each a waitress WSGI server, as `pdcaflow run` uses, on its own port, all
on the same database) and `workers` worker processes run at once; each worker talks HTTP to one server (round robin) the
way camunda-external-task-client-python3 does (a new connection per request, HTTP Basic), until a
fetch comes back empty. Afterwards the bench checks every task was completed exactly once.

To say what bounds the figure, it reports the CPU time the servers and the workers spent per task
(the rest of a 2-core machine's time goes to the database and other load), and with `ceiling` the
same workers then time bare round trips (two authenticated `GET /engine-rest/version` requests, no
database work): the most this HTTP pattern allows on this machine, measured in the same run.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.database import bench_database
from engine.accounts import save_user
from engine.runtime import Runtime
from engine.views import Actor
from storage.db import Database
from storage.external_tasks import ExternalTaskRow
from storage.models import AuditEvent, ProcessInstance

PROCESS = Path(__file__).parent / "resources" / "bench_external_task.bpmn"
KEY = "bench_external_task"
TOPIC = "bench-topic"
USER, PASSWORD = "bench.worker", "bench-worker-password"
MAX_ERRORS = 100  # per worker


def _serve(url: str, ready: Any, mark: Any, stop: Any) -> None:
    import threading

    from waitress import create_server

    from web import create_app
    from web.serving import RUN_THREADS

    db = Database(url)
    tmp = tempfile.mkdtemp()
    app = create_app({"DATABASE": db, "RUNTIME": Runtime(db), "SECRET_KEY": "bench", "INSTANCE_DIR": tmp})
    # the production server `pdcaflow run` uses (waitress, same thread count), on a free port
    server = create_server(app, host="127.0.0.1", port=0, threads=RUN_THREADS)
    ready.put(server.effective_port)
    threading.Thread(target=server.run, daemon=True).start()
    cpu = time.process_time()
    mark.wait()  # the bench proper is over: report the CPU time it took here
    ready.put(time.process_time() - cpu)
    stop.wait()
    server.close()


class _Client:
    """HTTP Basic JSON calls to one server: a new connection per request, as camunda-external-task-client-python3
    makes them (`requests.post`), or with `keep_alive` one connection reused, as Camunda's Java client's
    pooled HTTP client does."""

    def __init__(self, port: int, keep_alive: bool) -> None:
        self.port, self.keep_alive = port, keep_alive
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.headers = {"Content-Type": "application/json", "Authorization": f"Basic {auth}"}
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        conn = self.conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, f"/engine-rest{path}", body=json.dumps(body), headers=self.headers)
            response = conn.getresponse()
            raw = response.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            self.conn = None
            raise
        if self.keep_alive and not response.will_close:
            self.conn = conn
        else:
            conn.close()
            self.conn = None
        return response.status, json.loads(raw) if raw else None


def _work(port: int, name: str, max_tasks: int, keep_alive: bool, ceiling_trips: int, start: Any, start_bare: Any,
          results: Any) -> None:
    client = _Client(port, keep_alive)
    done = errors = 0
    start.wait()
    cpu = time.process_time()
    began = time.perf_counter()
    while True:
        status, tasks = client.call("POST", "/external-task/fetchAndLock", {
            "workerId": name, "maxTasks": max_tasks, "topics": [{"topicName": TOPIC, "lockDuration": 60000}]})
        if status != 200:
            errors += 1
            if errors >= MAX_ERRORS:  # a server that answers nothing but errors: stop, the figure says so
                break
            continue
        if not tasks:
            break
        for task in tasks:
            status, _ = client.call("POST", f"/external-task/{task['id']}/complete",
                              {"workerId": name, "variables": {"doneBy": {"value": name, "type": "String"}}})
            if status == 204:
                done += 1
            else:
                errors += 1
    results.put((name, done, errors, time.perf_counter() - began, time.process_time() - cpu))
    if ceiling_trips:
        start_bare.wait()  # all workers start the bare round trips together, after the bench proper
        for _ in range(ceiling_trips):
            for _ in range(2):
                if client.call("GET", "/version", {})[0] != 200:
                    errors += 1
        results.put((name, errors))


def run_external_task_bench(n: int, url: str | None = None, workers: int = 4, servers: int = 2, max_tasks: int = 1,
                            ceiling: bool = False, keep_alive: bool = False) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        db = bench_database(url, tmp)
        db_url = db.url
        runtime = Runtime(db)
        runtime.deploy_paths([PROCESS])
        save_user(db, USER, "worker", password=PASSWORD)
        actor = Actor.system("bench")
        for i in range(n):
            runtime.start(KEY, {"i": i}, actor)
        ready, results = ctx.Queue(), ctx.Queue()
        mark, stop, start, start_bare = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
        server_procs = [ctx.Process(target=_serve, args=(db_url, ready, mark, stop), daemon=True)
                        for _ in range(servers)]
        for p in server_procs:
            p.start()
        ports = [ready.get(timeout=120) for _ in server_procs]
        ceiling_trips = n // workers if ceiling else 0
        worker_procs = [ctx.Process(target=_work, args=(ports[i % len(ports)], f"worker-{i}", max_tasks, keep_alive,
                                                        ceiling_trips, start, start_bare, results), daemon=True)
                        for i in range(workers)]
        for p in worker_procs:
            p.start()
        time.sleep(2.0)  # let every worker import and block on the start event
        began = time.perf_counter()
        start.set()
        outcomes = [results.get(timeout=3600) for _ in worker_procs]
        elapsed = time.perf_counter() - began
        mark.set()
        server_cpu = sum(ready.get(timeout=60) for _ in server_procs)
        bare = None
        if ceiling_trips:
            began = time.perf_counter()
            start_bare.set()
            bare_errors = sum(results.get(timeout=3600)[1] for _ in worker_procs)
            bare = (time.perf_counter() - began, bare_errors)
        stop.set()
        for p in worker_procs + server_procs:
            p.join(30)
        with db.read() as s:
            completed = s.scalar(select(func.count()).select_from(ExternalTaskRow).where(ExternalTaskRow.state == "done"))
            finished = s.scalar(select(func.count()).select_from(ProcessInstance).where(
                ProcessInstance.status == "completed"))
            audited = s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.type == "external_task_completed"))
        db.dispose()
    done = sum(o[1] for o in outcomes)
    result = {"bench": "external-tasks", "db": db.dialect, "n": n, "workers": workers, "servers": servers,
              "max_tasks": max_tasks, "keep_alive": keep_alive, "completed": done, "errors": sum(o[2] for o in outcomes),
              "elapsed_s": round(elapsed, 2), "tasks_per_s": round(done / elapsed, 1) if elapsed else None,
              "server_cpu_ms_per_task": round(server_cpu * 1000 / done, 2) if done else None,
              "worker_cpu_ms_per_task": round(sum(o[4] for o in outcomes) * 1000 / done, 2) if done else None,
              "per_worker": {o[0]: o[1] for o in outcomes},
              "completed_once": completed == finished == audited == done == n}
    if bare is not None:
        bare_elapsed, bare_errors = bare
        result["bare_round_trips_per_s"] = round(ceiling_trips * workers / bare_elapsed, 1)
        result["bare_errors"] = bare_errors
    return result
