"""A real `pdcaflow scheduler` process fires a second-scale timer (the one test that waits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.runtime import Actor, Runtime
from storage.models import AuditEvent
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def test_scheduler_process_fires_a_pt2s_timer(db):
    runtime = Runtime(db)
    runtime.deploy_paths([FIXTURES / "scheduler" / "quick_timer.bpmn"])
    instance = runtime.start("quick_timer", {}, Actor("lena.lead", frozenset(), "quality_lead"))
    assert instance.status == "running"
    env = {**os.environ, "DATABASE_URL": db.url, "PDCAFLOW_SCHEDULER_INTERVAL": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SMTP_HOST", None)
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "scheduler"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        status = instance.status
        while time.monotonic() < deadline:
            status = runtime.instance(instance.id).status
            if status == "completed" or proc.poll() is not None:
                break
            time.sleep(0.25)
        assert status == "completed", (status, proc.poll())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert "scheduler running every 1s" in output
    with db.read() as s:
        fired = [a for a in s.query(AuditEvent).filter(AuditEvent.type == "timer_fired")]
        assert len(fired) == 1 and fired[0].instance_id == instance.id
