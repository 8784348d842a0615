"""Scale-out under load (issue 15): a throwaway PostgreSQL, `pdcaflow init-db`, the process library
deployed, two `pdcaflow serve` processes (gunicorn, two workers each) and two `pdcaflow scheduler`
processes (1 s interval), driven for 45 s by locust in headless mode (tests/load/locustfile.py):
customers filing complaints, employees listing and completing tasks, leads reassigning tasks and
moving due dates into the past, timers coming due. Then the database is checked: no complaint lost,
no task completed twice, every due timer fired exactly once, every escalation level applied once,
and no request answered 5xx. The figures go to stdout and to /tmp/pdcaflow-load-report.json.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from engine import clock
from storage.db import Database
from storage.models import AuditEvent, HumanTask, ProcessInstance, Timer
from storage.scheduling import TaskEscalation
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "tests" / "load" / "locustfile.py"
TIMER_PROCESS = ROOT / "tests" / "fixtures" / "scheduler" / "quick_timer.bpmn"  # waits PT2S, then ends
REPORT = Path("/tmp/pdcaflow-load-report.json")
PASSWORD = "load-test-password"
USERS = [  # name, role, groups (the employees and leads tests/load/locustfile.py signs in as)
    *[(name, "employee", ["customer_service", "employee"])
      for name in ("carl.service", "cora.service", "cleo.service", "chad.service")],
    *[(name, "quality_lead", ["quality_lead"]) for name in ("lena.lead", "luis.lead")],
]
RUN_SECONDS = int(os.environ.get("PDCAFLOW_LOAD_SECONDS", "45"))  # a longer or heavier run by hand: env
USERS_N = int(os.environ.get("PDCAFLOW_LOAD_USERS", "16"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "web.cli", *args], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _check(proc: subprocess.Popen, stdin: str | None = None) -> str:
    out, err = proc.communicate(stdin, timeout=120)
    assert proc.returncode == 0, f"{proc.args}: {err[-2000:]}"
    return out


def _wait_ready(base: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base} not ready in {seconds}s")


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM the process group (gunicorn's workers, the scheduler); returns its stderr."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return err or ""


@pytest.fixture
def load_database(pg_server_url):
    if pg_server_url is None:
        skip_or_fail("PostgreSQL is not available: " + getattr(pytest, "pdcaflow_pg_error", "no server"))
    name = f"pdcaflow_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _wait_timers_drained(db: Database, seconds: float = 30) -> None:
    """Until no timer due by now still waits (the last ones started came due 2 s after the run)."""
    time.sleep(3)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with db.read() as s:
            late = s.scalar(select(func.count()).select_from(Timer).where(
                Timer.state == "waiting", Timer.due_at <= clock.now()))
        if not late:
            return
        time.sleep(0.5)


def _excerpt(log: str) -> str:
    """From just before the first traceback in a process's stderr, or its end."""
    at = log.find("Traceback")
    return log[max(0, at - 300):at + 5000] if at >= 0 else log[-2000:]


@pytest.mark.slow
def test_two_servers_two_schedulers_under_load(load_database, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=load_database,
               PDCAFLOW_INSTANCE_DIR=str(tmp_path / "instance"), PDCAFLOW_SECRET_KEY="load-test-secret",
               PDCAFLOW_SCHEDULER_INTERVAL="1")
    _check(_cli(env, "init-db"))
    _check(_cli(env, "deploy", str(ROOT / "processes"), str(TIMER_PROCESS)))
    creating = [(_cli(env, "create-user", name, "--role", role, *[a for g in groups for a in ("--group", g)],
                      "--password-stdin", stdin=""), PASSWORD + "\n") for name, role, groups in USERS]
    for proc, password in creating:
        _check(proc, password)

    ports = [_free_port(), _free_port()]
    servers = [_cli(env, "serve", "--workers", "2", "--bind", f"127.0.0.1:{port}") for port in ports]
    schedulers = [_cli(env, "scheduler") for _ in range(2)]
    logs: dict[str, str] = {}
    db = Database(load_database)
    try:
        hosts = [f"http://127.0.0.1:{port}" for port in ports]
        for base, proc in zip(hosts, servers, strict=True):
            _wait_ready(base, proc)
        out = tmp_path / "locust.json"
        locust = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(USERS_N),
             "-r", str(USERS_N), "-t", f"{RUN_SECONDS}s", "--stop-timeout", "10", "--only-summary", "--host", hosts[0]],
            cwd=ROOT, env=dict(env, PDCAFLOW_LOAD_HOSTS=",".join(hosts), PDCAFLOW_LOAD_PASSWORD=PASSWORD,
                               PDCAFLOW_LOAD_OUT=str(out)),
            capture_output=True, text=True, timeout=RUN_SECONDS + 90)
        assert out.exists(), locust.stderr[-3000:]
        load = json.loads(out.read_text())
        _wait_timers_drained(db)
    finally:
        for i, proc in enumerate(servers):
            logs[f"server-{i}"] = _stop(proc)
        for i, proc in enumerate(schedulers):
            logs[f"scheduler-{i}"] = _stop(proc)

    try:
        with db.read() as s:
            filed = dict(s.execute(select(ProcessInstance.business_key, ProcessInstance.id).where(
                ProcessInstance.process_key == "complaint_to_improvement")).all())
            completions = dict(s.execute(select(AuditEvent.task_id, func.count()).where(
                AuditEvent.type == "complete").group_by(AuditEvent.task_id)).all())
            completed_rows = set(s.scalars(select(HumanTask.id).where(HumanTask.state == "completed")))
            timer_rows = s.execute(select(Timer.task_id, Timer.state, Timer.instance_id)).all()
            fired = dict(s.execute(select(AuditEvent.task_id, func.count()).where(
                AuditEvent.type == "timer_fired").group_by(AuditEvent.task_id)).all())
            timer_instances = dict(s.execute(select(ProcessInstance.id, ProcessInstance.status).where(
                ProcessInstance.process_key == "quick_timer")).all())
            escalations = s.execute(select(TaskEscalation.task_id, TaskEscalation.due_at, TaskEscalation.level,
                                           func.count()).group_by(TaskEscalation.task_id, TaskEscalation.due_at,
                                                                  TaskEscalation.level)).all()
    finally:
        db.dispose()

    references = load["complaints"]
    lost = sorted(set(references) - set(filed))
    unanswered = sorted(set(filed) - set(references))  # filed, but the client never saw the reference
    twice = {task: n for task, n in completions.items() if n > 1}
    answered_twice = len(load["completed"]) - len(set(load["completed"]))
    due_timers = [row for row in timer_rows if row.instance_id in set(load["timer_instances"])]
    not_fired = [row.task_id for row in due_timers if row.state != "done"]
    fired_wrong = {row.task_id: fired.get(row.task_id, 0) for row in due_timers if fired.get(row.task_id, 0) != 1}
    figures = {
        "requests": load["requests"], "rps": load["rps"], "p50_ms": load["p50_ms"], "p95_ms": load["p95_ms"],
        "status_5xx": load["status_5xx"], "connection_errors": load["connection_errors"],
        "statuses": load["statuses"], "complaints": len(references), "complaints_lost": len(lost),
        "complaints_unanswered": len(unanswered), "tasks_completed": len(load["completed"]),
        "completed_twice": len(twice) + answered_twice, "timers_due": len(due_timers),
        "timers_not_fired": len(not_fired), "timers_fired_not_once": len(fired_wrong),
        "escalations": len(escalations), "escalations_twice": sum(1 for row in escalations if row[3] > 1),
        "per_request": load["per_request"], "errors": load["errors"],
        "logs": {name: _excerpt(log) for name, log in logs.items() if log.strip()},
    }
    REPORT.write_text(json.dumps(figures, indent=1))
    print("\nscale-out load:", json.dumps({k: v for k, v in figures.items() if k not in ("per_request", "logs")}))
    tracebacks = {name: _excerpt(log) for name, log in logs.items() if "Traceback" in log}

    assert load["status_5xx"] == 0 and load["connection_errors"] == 0, (load["errors"], tracebacks)
    assert not tracebacks, tracebacks
    assert references and len(references) == len(set(references)), "a reference was handed out twice"
    assert not lost and not unanswered, (lost, unanswered)
    assert load["completed"] and not twice and not answered_twice, twice
    assert set(load["completed"]) == set(completions) == completed_rows  # every 200 is one completion
    assert due_timers and len(due_timers) == len(load["timer_instances"]) == len(timer_instances)
    assert not not_fired and not fired_wrong, (not_fired, fired_wrong)
    assert set(timer_instances.values()) == {"completed"}
    assert load["past_due"] and escalations and figures["escalations_twice"] == 0
    assert load["failures"] == 0, load["errors"]
