"""`GET /metrics` over real HTTP: figures about the work counted in the database, timer lateness,
request latency by endpoint, who may scrape, and `pdcaflow serve` with two gunicorn workers whose
request figures add up whichever worker answers the scrape."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from prometheus_client.parser import text_string_to_metric_families

from engine.runtime import Actor
from engine.runtime.timers import fire_due_timers
from storage.models import Incident
from storage.scheduling import NotificationOutbox
from tests.conftest import FIXTURES, serving
from tests.integration.conftest import start_review
from tests.integration.test_serving import _env, _free_port, _stop, _wait_up

ROOT = Path(__file__).resolve().parents[2]
RITA = Actor("rita.reviewer", frozenset({"reviewers"}), "employee")


def _scrape(base: str, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value}."""
    request = urllib.request.Request(f"{base}/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _status(base: str, path: str = "/metrics", headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers=headers or {}), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _requests(samples: dict, endpoint: str, method: str = "GET", status: str = "200") -> float:
    key = ("pdcaflow_http_request_duration_seconds_count",
           tuple(sorted({"endpoint": endpoint, "method": method, "status": status}.items())))
    return samples.get(key, 0.0)


def test_work_figures_come_from_the_database(app, runtime, db):
    first, _second = start_review(runtime, "C-1"), start_review(runtime, "C-2")
    task = runtime.tasks(RITA, instance_id=first.id)[0]
    runtime.claim(task.id, RITA)
    runtime.complete(task.id, RITA, {"amount": 5, "urgent": False, "note": "ok"})
    now = datetime.now(UTC)
    with db.write() as s:
        s.add(Incident(instance_id=first.id, message="boom", data={}, created_at=now))
        s.add(Incident(instance_id=first.id, message="fixed", data={}, created_at=now, resolved_at=now))
        for i, state in enumerate(("pending", "pending", "sent")):
            s.add(NotificationOutbox(dedupe_key=f"m:{i}", kind="test", username=None, address="a@example.com",
                                     subject="s", body_text="b", body_html=None, state=state, attempts=0,
                                     next_attempt_at=now, created_at=now))
    with serving(app) as base:
        samples = _scrape(base)
    assert samples[("pdcaflow_tasks_created_total", ())] == 3  # two assessments, one approval after it
    assert samples[("pdcaflow_tasks_completed_total", ())] == 1
    assert samples[("pdcaflow_outbox_pending", ())] == 2
    assert samples[("pdcaflow_incidents_open", ())] == 1


def test_timer_lateness_is_a_histogram_the_schedulers_fill(app, runtime):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    runtime.deploy_paths([FIXTURES / "scheduler" / "quick_timer.bpmn"])  # waits PT2S
    with time_machine.travel(t0, tick=False):
        for i in range(3):
            runtime.start("quick_timer", {"reference": f"Q-{i}"}, Actor.system("test"))
    with time_machine.travel(t0 + timedelta(seconds=2.7), tick=False):
        assert fire_due_timers(runtime, "w1").fired == 3  # each 0.7 s after its due time
    with serving(app) as base:
        samples = _scrape(base)
    bucket = lambda le: samples[("pdcaflow_timer_lateness_seconds_bucket", (("le", le),))]  # noqa: E731
    assert (bucket("0.5"), bucket("1.0"), bucket("+Inf")) == (0, 3, 3)
    assert samples[("pdcaflow_timer_lateness_seconds_count", ())] == 3
    assert abs(samples[("pdcaflow_timer_lateness_seconds_sum", ())] - 2.1) < 1e-6


def test_request_latency_by_endpoint_method_and_status(app):
    with serving(app) as base:
        before = _scrape(base)
        for _ in range(3):
            assert _status(base, "/healthz") == 200
        assert _status(base, "/no-such-page") == 404
        after = _scrape(base)
    assert _requests(after, "healthz") - _requests(before, "healthz") == 3
    assert _requests(after, "unmatched", status="404") - _requests(before, "unmatched", status="404") == 1
    assert _requests(after, "metrics.scrape") >= 1


def test_only_local_direct_scrapes_or_the_token_may_read(app, monkeypatch):
    with serving(app) as base:
        assert _status(base) == 200  # from this machine, directly: the default
        # through a reverse proxy (which adds X-Forwarded-For) the address says nothing: refused
        assert _status(base, headers={"X-Forwarded-For": "127.0.0.1"}) == 403
        monkeypatch.setenv("PDCAFLOW_METRICS_ALLOW", "10.0.0.0/8")
        monkeypatch.setenv("PDCAFLOW_METRICS_TOKEN", "scrape-secret-1")
        from engine import settings

        settings.reset()
        assert _status(base) == 403  # 127.0.0.1 is not in the allowed network any more
        assert _status(base, headers={"Authorization": "Bearer wrong"}) == 403
        bearer = {"Authorization": "Bearer scrape-secret-1"}
        assert _status(base, headers=bearer) == 200
        assert _status(base, headers={**bearer, "X-Forwarded-For": "203.0.113.9"}) == 200


def test_serve_workers_share_request_metrics_and_log_json_lines(tmp_path):
    env = _env(tmp_path, None)
    metrics_dir = tmp_path / "metrics"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["PDCAFLOW_LOG_FORMAT"] = "json"
    subprocess.run([sys.executable, "-m", "web.cli", "init-db"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--workers", "2", "--threads", "1",
                             "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_up(f"{base}/healthz", proc)
        # Both workers must serve: a request held half-sent keeps one (sync) worker reading it, so
        # the other answers the 40; finishing it then makes the first one count it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
            held.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(40):
                assert _status(base, "/healthz") == 200
            held.sendall(b"Connection: close\r\n\r\n")
            assert held.makefile("rb").readline().split()[1] == b"200"
        assert _status(base, "/api/v1/tasks", headers={"X-Request-ID": "probe-42"}) == 401
        scrapes = [_scrape(base) for _ in range(6)]
        # each worker keeps its own file, and every scrape, whichever worker answered it, counts all
        # 41 requests plus the one _wait_up made
        assert len({p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("histogram_*.db")}) == 2
        assert {_requests(s, "healthz") for s in scrapes} == {42}
        assert scrapes[-1][("pdcaflow_tasks_created_total", ())] == 0
    finally:
        _, stderr = _stop(proc)
    assert not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    # one JSON object per line; each request's line names it, its status and how long it took
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "pdcaflow.request"]
    assert len(requests) >= 42 + 6 + 1
    [probe] = [line for line in requests if line["request_id"] == "probe-42"]
    assert probe["method"] == "GET" and probe["path"] == "/api/v1/tasks" and probe["status"] == 401
    assert probe["level"] == "info" and probe["message"] == "GET /api/v1/tasks 401"
    assert probe["duration_ms"] >= 0 and datetime.fromisoformat(probe["time"]).tzinfo is not None
    assert len({line["request_id"] for line in requests}) == len(requests)  # a fresh id per request
