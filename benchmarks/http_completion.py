"""`pdcaflow bench http`: task completions per second through gunicorn, side by side with a bare
Flask JSON endpoint on the same gunicorn configuration in the same run (issue 15's goal: completions
per second >= 35 % of the bare endpoint's requests per second).

N instances of bench_review wait at their first user task (started through the runtime before the
stopwatch starts). Two gunicorn servers run at once, each started by `web.serving.serve_gunicorn`
with the settings `pdcaflow serve` uses (workers, threads, timeout): one serves PDCA Flow, the other
a Flask app whose one endpoint parses a JSON body and answers JSON. `clients` client processes each
hold one keep-alive connection and send, one after the other, `POST /api/v1/tasks/<id>/complete`
(bearer token, a form value) for their share of the tasks; then the same clients send as many
requests to the bare endpoint. Afterwards the bench checks every task was completed exactly once.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.database import bench_database
from engine import directory
from engine.accounts import save_user
from engine.credentials import SignInLimits, sign_in
from engine.runtime import Runtime
from engine.views import Actor
from storage.db import Database
from storage.models import AuditEvent, HumanTask

PROCESS = Path(__file__).parent / "resources" / "bench_review.bpmn"
KEY, TASK = "bench_review", "Task_Assess"
USER = "bench.reviewer"
PASSWORD = "bench-reviewer-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bare_app() -> Any:
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post("/bare/<item>")
    def bare(item: str) -> Any:  # parse a JSON body, answer JSON: the floor of any JSON API request
        payload = request.get_json()
        return jsonify(id=item, received=sorted(payload))

    return app


def _pdcaflow_app(url: str, instance_dir: str) -> Any:
    from web import create_app

    db = Database(url)
    return create_app({"DATABASE": db, "RUNTIME": Runtime(db), "SECRET_KEY": "bench", "INSTANCE_DIR": instance_dir})


def _serve(kind: str, url: str, instance_dir: str, bind: str) -> None:
    """One gunicorn master (it forks the workers); `kind` is "pdcaflow" or "bare"."""
    from web.serving import DEFAULT_THREADS, DEFAULT_TIMEOUT, DEFAULT_WORKERS, serve_gunicorn

    def factory() -> Any:
        return _pdcaflow_app(url, instance_dir) if kind == "pdcaflow" else _bare_app()

    serve_gunicorn(factory, bind, DEFAULT_WORKERS, DEFAULT_THREADS, DEFAULT_TIMEOUT)


def _wait_up(port: int, path: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not answer in {seconds}s")


def _client(port: int, paths: list[str], headers: dict[str, str], body: bytes, ready: Any, start: Any,
            results: Any) -> None:
    """Send one POST per path over a keep-alive connection; report (latencies, status counts, seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    ready.put(True)
    start.wait()
    began = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t0)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    results.put((latencies, statuses, time.perf_counter() - began))
    conn.close()


def _drive(ctx: Any, port: int, shares: list[list[str]], headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Run one client process per share at once; requests/s over the wall time, p95, status counts."""
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, share, headers, body, ready, start, results))
             for share in shares]
    for p in procs:
        p.start()
    for _ in procs:  # every client imported and waiting: the stopwatch times requests only
        ready.get(timeout=300)
    began = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=3600) for _ in procs]
    elapsed = time.perf_counter() - began
    for p in procs:
        p.join(30)
    latencies = sorted(x for o in outcomes for x in o[0])
    statuses: dict[int, int] = {}
    for o in outcomes:
        for status, count in o[1].items():
            statuses[status] = statuses.get(status, 0) + count
    ok = statuses.get(200, 0)
    return {"requests": len(latencies), "ok": ok, "elapsed_s": round(elapsed, 2),
            "per_s": round(ok / elapsed, 1) if elapsed else None,
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1) if latencies else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def _seed(db: Database, n: int) -> tuple[list[str], str]:
    """N waiting bench_review tasks and a bearer token of a reviewer who may complete them."""
    runtime = Runtime(db)
    runtime.deploy_paths([PROCESS])
    save_user(db, USER, "employee", password=PASSWORD, groups=["reviewers"])
    actor = Actor.system("bench")
    for i in range(n):
        runtime.start(KEY, {"i": i}, actor)
    with db.read() as s:
        task_ids = list(s.scalars(select(HumanTask.id).where(HumanTask.spec_id == TASK, HumanTask.state == "open")))
    credential = sign_in(db, "127.0.0.1", USER, PASSWORD, SignInLimits())
    if credential is None:
        raise RuntimeError(f"the bench user {USER} could not sign in")
    token, _ = directory.issue_token(db, credential)
    return task_ids, token


def run_http_bench(n: int, url: str | None = None, clients: int = 8) -> dict[str, Any]:
    from web.serving import DEFAULT_THREADS, DEFAULT_WORKERS

    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        db = bench_database(url, tmp)
        db_url = db.url
        task_ids, token = _seed(db, n)
        ports = {"pdcaflow": _free_port(), "bare": _free_port()}
        servers = [ctx.Process(target=_serve, args=(kind, db_url, tmp, f"127.0.0.1:{port}"))
                   for kind, port in ports.items()]
        for p in servers:
            p.start()
        try:
            _wait_up(ports["pdcaflow"], "/healthz")
            _wait_up(ports["bare"], "/")
            json_headers = {"Content-Type": "application/json"}
            body = json.dumps({"data": {"amount": 7, "note": "checked"}}).encode()
            # the same clients, the same number of requests, the same body, one server after the other
            shares = [task_ids[i::clients] for i in range(clients)]
            bare = _drive(ctx, ports["bare"], [[f"/bare/{t}" for t in share] for share in shares], json_headers, body)
            completion = _drive(ctx, ports["pdcaflow"], [[f"/api/v1/tasks/{t}/complete" for t in share]
                                                         for share in shares],
                                dict(json_headers, Authorization=f"Bearer {token}"), body)
        finally:
            for p in servers:
                p.terminate()  # SIGTERM: gunicorn stops its workers gracefully
            for p in servers:
                p.join(30)
        with db.read() as s:
            audited = dict(s.execute(select(AuditEvent.task_id, func.count()).where(
                AuditEvent.type == "complete").group_by(AuditEvent.task_id)).all())
            completed = s.scalar(select(func.count()).select_from(HumanTask).where(
                HumanTask.spec_id == TASK, HumanTask.state == "completed"))
        db.dispose()
    ratio = completion["per_s"] / bare["per_s"] if completion["per_s"] and bare["per_s"] else None
    return {"bench": "http", "db": db.dialect, "n": len(task_ids), "clients": clients,
            "gunicorn": f"{DEFAULT_WORKERS} workers x {DEFAULT_THREADS} threads",
            "completions_per_s": completion["per_s"], "completion_p50_ms": completion["p50_ms"],
            "completion_p95_ms": completion["p95_ms"], "completion_statuses": completion["statuses"],
            "bare_per_s": bare["per_s"], "bare_p50_ms": bare["p50_ms"], "bare_p95_ms": bare["p95_ms"],
            "ratio_to_bare": round(ratio, 3) if ratio else None, "goal_ratio": 0.35,
            "completed_once": completed == len(audited) == len(task_ids) == completion["ok"]
            and set(audited.values()) == {1}}
