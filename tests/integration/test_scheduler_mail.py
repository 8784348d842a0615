"""Escalation and notifications end to end, delivered to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest
import time_machine
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from engine import notifications
from engine.escalation import escalate_overdue, escalations_for
from engine.mailer import SmtpConfig
from engine.notifications import OutboxPolicy, deliver_outbox, notifications_for, notify_task_events
from engine.runtime import Actor, Runtime
from storage.models import HumanTask
from storage.scheduling import NotificationOutbox
from storage.users import upsert_user
from tests.conftest import FIXTURES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DEFAULTS = {"escalation.reminder": "P1D", "escalation.grace": "P1D", "escalation.to": "quality_lead"}
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
RITA = Actor("rita", frozenset({"reviewers"}), "employee")


class Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"

    def by_subject(self, prefix: str) -> list[str]:
        return sorted(rcpt for rcpts, m in self.messages if m["Subject"].startswith(prefix) for rcpt in rcpts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An aiosmtpd server on a fixed port that can be stopped (an outage) and started again."""

    def __init__(self, collector: Collector, port: int) -> None:
        self.collector, self.port = collector, port
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp():
    collector = Collector()
    server = Server(collector, _free_port())
    server.start()
    try:
        yield collector, server, SmtpConfig(host="127.0.0.1", port=server.port, sender="pdca@example.com")
    finally:
        server.stop()


def _users(db) -> None:
    with db.write() as s:
        for name, role, groups in [("rita", "employee", ["reviewers"]), ("rob", "employee", ["reviewers"]),
                                   ("lena.lead", "quality_lead", ["quality_lead"]),
                                   ("max.manager", "employee", ["management"]),
                                   ("nomail", "employee", ["reviewers"])]:
            upsert_user(s, name, role=role, password_hash="x", email=None if name == "nomail" else f"{name}@example.com",
                        groups=groups, now=T0)


def _pass(db, config, at: datetime) -> None:
    with time_machine.travel(at, tick=False):
        escalate_overdue(db, "w1", defaults=DEFAULTS)
        notify_task_events(db)
        deliver_outbox(db, "w1", config, OutboxPolicy(backoff=timedelta(seconds=60)))


def test_overdue_task_reminder_overdue_and_escalation_mails_arrive_once(db, smtp):
    collector, _controller, config = smtp
    runtime = Runtime(db)
    _users(db)
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
        instance = runtime.start("overdue_task", {"reference": "C-77"}, LEAD)
    task = instance.tasks[0]
    assert task.due_at == T0 + timedelta(days=2)
    _pass(db, config, T0 + timedelta(minutes=1))
    assert collector.by_subject("New task") == ["rita@example.com", "rob@example.com"]
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        runtime.claim(task.id, RITA)
    _pass(db, config, T0 + timedelta(hours=2))
    assert collector.by_subject("Reminder") == []
    _pass(db, config, T0 + timedelta(days=1, minutes=1))  # due - P1D
    assert collector.by_subject("Reminder") == ["rita@example.com"]
    _pass(db, config, T0 + timedelta(days=2, minutes=1))  # due
    assert collector.by_subject("Overdue") == ["rita@example.com", "rob@example.com"]
    _pass(db, config, T0 + timedelta(days=2, hours=11))  # process-level grace is PT12H
    assert collector.by_subject("Escalation") == []
    _pass(db, config, T0 + timedelta(days=2, hours=12, minutes=1))
    _pass(db, config, T0 + timedelta(days=3))
    _pass(db, config, T0 + timedelta(days=9))
    assert collector.by_subject("Reminder") == ["rita@example.com"]
    assert collector.by_subject("Overdue") == ["rita@example.com", "rob@example.com"]
    assert collector.by_subject("Escalation") == ["lena.lead@example.com"]
    assert len(collector.messages) == 6
    mail = next(m for _, m in collector.messages if m["Subject"].startswith("Escalation"))
    assert mail.is_multipart() and {p.get_content_type() for p in mail.walk()} >= {"text/plain", "text/html"}
    assert "C-77" in mail.get_payload()[0].get_payload(decode=True).decode()
    assert mail["From"] == "pdca@example.com"

    levels = escalations_for(db, task.id)
    assert [(e["level"], e["notified"]) for e in levels] == [
        ("reminder", ["rita"]), ("overdue", ["nomail", "rita", "rob"]), ("escalation", ["lena.lead"])]
    assert levels[0]["at"] == (T0 + timedelta(days=1, minutes=1)).isoformat()
    inbox = notifications_for(db, "nomail")  # no address: in-app only
    assert inbox["unread"] == 2 and {i["kind"] for i in inbox["items"]} == {"new_task", "overdue"}
    assert notifications.mark_read(db, "nomail") == 2 and notifications.unread_count(db, "nomail") == 0

    # completing stops it: the next task has its own policy (task-level camunda:properties)
    with time_machine.travel(T0 + timedelta(days=9, hours=1), tick=False):
        runtime.complete(task.id, RITA, {})
    fix = next(t for t in runtime.instance(instance.id).tasks if t.state == "open")
    assert fix.spec_id == "Task_Fix" and fix.due_at == T0 + timedelta(days=14, hours=1)
    before = len(collector.messages)
    _pass(db, config, T0 + timedelta(days=14, hours=1) + timedelta(days=3, minutes=1))
    # reminder skipped (came too late); nobody is in "production", so the overdue notice reaches no one
    new = sorted((m["Subject"], rcpts) for rcpts, m in collector.messages[before:])
    assert new == [("Escalation (escalation): Fix cause is overdue", ["lena.lead@example.com"]),
                   ("Escalation (escalation_2): Fix cause is overdue", ["max.manager@example.com"])]
    assert [e["level"] for e in escalations_for(db, fix.id)] == ["overdue", "escalation", "escalation_2"]


def test_reassignment_stops_and_a_new_due_date_restarts(db, smtp):
    collector, _controller, config = smtp
    runtime = Runtime(db)
    _users(db)
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
        task = runtime.start("overdue_task", {}, LEAD).tasks[0]
    _pass(db, config, T0 + timedelta(days=2, minutes=1))  # reminder skipped, overdue sent
    assert [e["level"] for e in escalations_for(db, task.id)] == ["overdue"]
    with time_machine.travel(T0 + timedelta(days=2, hours=1), tick=False):
        runtime.assign(task.id, LEAD, "rob")
    _pass(db, config, T0 + timedelta(days=2, hours=2))
    assert collector.by_subject("Task assigned") == ["rob@example.com"]
    _pass(db, config, T0 + timedelta(days=5))  # no escalation any more for this due date
    assert collector.by_subject("Escalation") == []
    # a new due date starts a new cycle
    with db.write() as s:
        s.execute(update(HumanTask).where(HumanTask.id == task.id).values(due_at=T0 + timedelta(days=10)))
    _pass(db, config, T0 + timedelta(days=9, hours=1))
    assert collector.by_subject("Reminder") == ["rob@example.com"]
    assert [e["level"] for e in escalations_for(db, task.id)] == ["overdue", "reminder"]


def test_smtp_outage_is_retried_and_delivered_once(db, smtp):
    collector, controller, config = smtp
    runtime = Runtime(db)
    _users(db)
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
        runtime.start("overdue_task", {}, LEAD)
    controller.stop()
    _pass(db, config, T0 + timedelta(minutes=1))
    with db.read() as s:
        rows = s.scalars(select(NotificationOutbox)).all()
        assert len(rows) == 2 and {(r.state, r.attempts) for r in rows} == {("pending", 1)}
        assert all(r.last_error for r in rows)
    _pass(db, config, T0 + timedelta(minutes=1, seconds=30))  # still backing off: no attempt
    with db.read() as s:
        assert {r.attempts for r in s.scalars(select(NotificationOutbox))} == {1}
    _pass(db, config, T0 + timedelta(minutes=2, seconds=1))  # server still down: second attempt fails
    with db.read() as s:
        assert {r.attempts for r in s.scalars(select(NotificationOutbox))} == {2}
    controller.start()
    _pass(db, config, T0 + timedelta(minutes=3, seconds=59))  # back-off is 120 s now
    assert collector.messages == []
    _pass(db, config, T0 + timedelta(minutes=4, seconds=2))
    _pass(db, config, T0 + timedelta(minutes=30))
    assert collector.by_subject("New task") == ["rita@example.com", "rob@example.com"]
    with db.read() as s:
        assert {r.state for r in s.scalars(select(NotificationOutbox))} == {"sent"}


def test_no_smtp_host_keeps_in_app_and_skips_mail(db):
    runtime = Runtime(db)
    _users(db)
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
        runtime.start("overdue_task", {}, LEAD)
        notify_task_events(db)
        assert notify_task_events(db) == 0  # re-reading the window adds nothing and counts nothing (dedupe)
        result = deliver_outbox(db, "w1", SmtpConfig(host=None))
    assert result.skipped == 2 and result.sent == 0
    assert notifications_for(db, "rita")["unread"] == 1
    with db.read() as s:
        assert len(s.scalars(select(NotificationOutbox)).all()) == 2
