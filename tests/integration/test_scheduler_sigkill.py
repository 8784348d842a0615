"""Two scheduler processes on one PostgreSQL database, 2,000 due timers, one process SIGKILLed
mid-pass: every timer fires exactly once and the survivor finishes the rest after the dead
worker's leases expire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from benchmarks.timers import seed_timer_backlog
from engine import clock
from storage.db import Database
from storage.models import AuditEvent, ProcessInstance, Timer
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
N = 2000
# A worker process: clock moved past the one-hour timers (ticking, so leases can expire), short
# leases and small batches, firing until no waiting timer is left in the whole database.
WORKER = """
import sys, time
from datetime import timedelta
import time_machine
from engine.runtime import Runtime
from engine.runtime.timers import TimerPolicy, fire_due_timers
from storage.db import Database
from storage.models import Timer
from sqlalchemy import func, select
url, name, at = sys.argv[1], sys.argv[2], float(sys.argv[3])
db = Database(url)
runtime = Runtime(db)
policy = TimerPolicy(lease=timedelta(seconds=3), batch=25, max_rounds=1)
with time_machine.travel(at, tick=True):
    while True:
        fire_due_timers(runtime, name, policy)
        with db.read() as s:
            if not s.scalar(select(func.count()).select_from(Timer).where(Timer.state == "waiting")):
                break
        time.sleep(0.05)
"""


def _spawn(url: str, name: str, at: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", WORKER, url, name, str(at)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_two_processes_sigkill_one_every_timer_fires_once(pg_database):
    if pg_database is None:
        skip_or_fail("PostgreSQL is not available")
    db = Database(pg_database)
    db.truncate_all()
    try:
        seed_timer_backlog(db, N)
        at = (clock.now() + timedelta(hours=2)).timestamp()
        victim, survivor = _spawn(pg_database, "worker-a", at), _spawn(pg_database, "worker-b", at)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # kill worker-a while it is busy, with work left over
                with db.read() as s:
                    fired_by_a = s.scalar(select(func.count()).select_from(AuditEvent).where(
                        AuditEvent.type == "timer_fired", AuditEvent.payload["worker"].as_string() == "worker-a"))
                    left = s.scalar(select(func.count()).select_from(Timer).where(Timer.state == "waiting"))
                if fired_by_a and fired_by_a >= 50:
                    break
                assert left, "all timers fired before worker-a could be killed"
                time.sleep(0.05)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            assert survivor.wait(timeout=600) == 0, survivor.stderr.read().decode()[-2000:]
        finally:
            for proc in (victim, survivor):
                if proc.poll() is None:
                    proc.kill()
        with db.read() as s:
            fired = s.execute(select(AuditEvent.task_id, func.count()).where(AuditEvent.type == "timer_fired")
                              .group_by(AuditEvent.task_id)).all()
            assert len(fired) == N and all(count == 1 for _, count in fired)  # exactly once each
            assert s.scalar(select(func.count()).select_from(Timer).where(Timer.state != "done")) == 0
            assert s.scalar(select(func.count()).select_from(ProcessInstance)
                            .where(ProcessInstance.status != "completed")) == 0
            worker = AuditEvent.payload["worker"].as_string().label("worker")
            workers = dict(s.execute(select(worker, func.count()).where(AuditEvent.type == "timer_fired")
                                     .group_by(worker)).all())
        assert workers.get("worker-a", 0) >= 50 and workers.get("worker-b", 0) > 0
    finally:
        db.dispose()
