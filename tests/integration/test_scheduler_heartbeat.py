"""Short leases renewed by a heartbeat, with real `pdcaflow scheduler` processes on SQLite and
PostgreSQL: a scheduler killed with SIGKILL mid-lease leaves its timers to the other one within one
short lease (each timer still fires exactly once), and a pass that runs longer than the lease keeps
its rows (each mail is delivered once)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from benchmarks.timers import seed_timer_backlog
from engine import clock
from storage.models import AuditEvent, Timer
from storage.scheduling import NotificationOutbox

ROOT = Path(__file__).resolve().parents[2]
LEASE = 6  # seconds (production default 30): the heartbeat renews every 2 s
SLACK = timedelta(seconds=10)  # a scheduler pass every 0.5 s, plus the batch it is in on a busy shared machine


def _scheduler(url: str, tmp_path: Path, **env: str) -> subprocess.Popen:
    environ = dict(os.environ, PYTHONPATH=str(ROOT), DATABASE_URL=url, PDCAFLOW_INSTANCE_DIR=str(tmp_path),
                   PDCAFLOW_SCHEDULER_INTERVAL="0.5", PDCAFLOW_TIMER_LEASE=str(LEASE), PDCAFLOW_ESCALATION="off",
                   **env)
    # its log goes to a file: a pipe nobody reads would fill up and block the scheduler
    log = tempfile.NamedTemporaryFile(dir=tmp_path, prefix="scheduler-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "scheduler"], cwd=ROOT, env=environ,
                            stdout=subprocess.DEVNULL, stderr=log)
    proc.args_log = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


def _name(proc: subprocess.Popen) -> str:
    return f"{socket.gethostname()}:{proc.pid}"  # engine.scheduler.worker_name() of that process


def _output(proc: subprocess.Popen) -> str:
    return Path(proc.args_log).read_text()[-3000:]


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _wait_for(condition, timeout: float, what: str, procs: tuple[subprocess.Popen, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, f"scheduler exited: {_output(proc)}"
        if time.monotonic() > deadline:
            _stop(*procs)
            logs = "\n".join(_output(proc) for proc in procs)
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}; scheduler output:\n{logs}")
        time.sleep(0.02)


def _stopped(proc: subprocess.Popen) -> bool:
    # field 3 of /proc/PID/stat, after the parenthesised command name: "T" once SIGSTOP took hold
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")


def _freeze_holding_leases(proc: subprocess.Popen, db) -> tuple[dict[str, datetime], datetime]:
    """Stop the scheduler at a moment it holds leases on timers it has not fired. Between two batches it
    holds none, so a kill at a moment chosen by a poll that ran just before may find nothing held: freeze
    it first, look, and let it run on until the look finds leases. Returns those leases and the moment it
    froze (its heartbeat renews nothing after that)."""
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        _wait_for(lambda: _stopped(proc), 10, "the scheduler to stop")
        frozen_at = datetime.now(UTC)
        with db.read() as s:
            held = {t.task_id: t.locked_until for t in s.scalars(
                select(Timer).where(Timer.state == "waiting", Timer.locked_by == _name(proc)))}
        if held:
            return held, frozen_at
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the scheduler never held a lease in 200 looks")


def test_sigkilled_scheduler_timers_are_fired_by_the_other_within_one_lease(db, tmp_path):
    n = 1000 if db.dialect == "postgresql" else 400
    with clock.shifted(-timedelta(hours=2)):  # the backlog's one-hour timers came due an hour ago
        seed_timer_backlog(db, n)

    def count(*where) -> int:
        with db.read() as s:
            return s.scalar(select(func.count()).select_from(Timer).where(*where)) or 0

    victim = _scheduler(db.url, tmp_path, PDCAFLOW_TIMER_BATCH="20")
    survivor = None
    try:
        # kill -9 while the victim holds a lease on timers it has not fired yet, with work left over
        _wait_for(lambda: count(Timer.state == "done") >= 40, 120, "the victim to fire timers", (victim,))
        orphans, killed_at = _freeze_holding_leases(victim, db)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        # the dead scheduler's leases are short: they run out within one lease of the kill
        assert max(orphans.values()) <= killed_at + timedelta(seconds=LEASE)
        survivor = _scheduler(db.url, tmp_path, PDCAFLOW_TIMER_BATCH="20")
        _wait_for(lambda: count(Timer.state != "done") == 0, 120,
                  lambda: f"every timer to fire ({count(Timer.state != 'done')} left)", (survivor,))
    finally:
        _stop(victim, *([survivor] if survivor else []))

    with db.read() as s:
        fired = dict(s.execute(select(AuditEvent.task_id, func.count()).where(AuditEvent.type == "timer_fired")
                               .group_by(AuditEvent.task_id)).all())
        assert len(fired) == n and set(fired.values()) == {1}  # every timer exactly once
        taken_over = s.execute(select(AuditEvent.task_id, AuditEvent.at, AuditEvent.payload["worker"].as_string())
                               .where(AuditEvent.type == "timer_fired",
                                      AuditEvent.task_id.in_(list(orphans)))).all()
    assert {task for task, _, _ in taken_over} == set(orphans)
    for task, at, worker in taken_over:
        assert worker == _name(survivor)
        # not before the dead scheduler's lease ran out, and soon after it
        assert orphans[task] <= at <= orphans[task] + SLACK
    assert max(at for _, at, _ in taken_over) <= killed_at + timedelta(seconds=LEASE) + SLACK


class SlowSmtp:
    """Takes a second per message, so one scheduler's batch of mails outlasts its lease."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        await asyncio.sleep(1.0)
        subject = next(line for line in envelope.content.decode().splitlines() if line.startswith("Subject:"))
        self.subjects.append(subject.split(":", 1)[1].strip())
        return "250 OK"


def test_heartbeat_keeps_a_long_pass_leases_so_no_mail_is_sent_twice(db, tmp_path):
    mails = 3 * LEASE // 2  # at a second each: a pass of 9 s against a 6 s lease
    now = clock.now()
    with db.write() as s:
        for i in range(mails):
            s.add(NotificationOutbox(dedupe_key=f"heartbeat:{i}", kind="test", username=None, address="a@example.com",
                                     subject=f"mail {i}", body_text="hello", body_html=None, state="pending",
                                     attempts=0, next_attempt_at=now, created_at=now))
    smtp = SlowSmtp()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(smtp, hostname="127.0.0.1", port=port)
    controller.start()
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port)}
    first = _scheduler(db.url, tmp_path, **env)
    second = None
    try:
        def sent() -> int:
            with db.read() as s:
                return s.scalar(select(func.count()).select_from(NotificationOutbox)
                                .where(NotificationOutbox.state == "sent")) or 0

        # one scheduler leases the whole batch; the other polls all along and must not take it over
        _wait_for(lambda: len(smtp.subjects) >= 1, 60, "the first mail", (first,))
        second = _scheduler(db.url, tmp_path, **env)
        _wait_for(lambda: sent() == mails, 120, "every mail", (first, second))
    finally:
        _stop(first, *([second] if second else []))
        controller.stop()
    assert sorted(smtp.subjects) == sorted(f"mail {i}" for i in range(mails))  # each exactly once
