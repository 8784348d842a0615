"""Reminders respect the task's duration: a reminder lead time as long as the task (the complaint's
one-day "Acknowledge the customer" with the default one-day reminder) does not remind at creation;
it waits until a share of the task's time has passed (PDCAFLOW_ESCALATION_REMINDER_ELAPSED, or the
property escalation.reminder.elapsed). Time moves through the engine clock (time-machine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from engine.escalation import _env_properties, escalate_overdue, escalations_for, policy_from
from engine.runtime import Actor, Runtime
from engine.settings import Settings, SettingsError
from storage.users import upsert_user
from tests.conftest import FIXTURES

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


def _levels_at(db, task_id: str, at: datetime, defaults: dict[str, str]) -> list[str]:
    with time_machine.travel(at, tick=False):
        escalate_overdue(db, "w1", defaults=defaults)
    return [e["level"] for e in escalations_for(db, task_id)]


def _start(db) -> str:
    with db.write() as s:
        upsert_user(s, "rita", role="employee", password_hash="x", email=None, groups=["reviewers"], now=T0)
    runtime = Runtime(db)
    with time_machine.travel(T0, tick=False):
        runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
        task = runtime.start("overdue_task", {}, LEAD).tasks[0]
    assert task.due_at == T0 + timedelta(days=2)
    return task.id


def test_reminder_as_long_as_the_task_waits_for_half_its_time(db):
    task_id = _start(db)
    # the reminder lead time equals the task's whole duration: the old rule reminded at creation
    defaults = {"escalation.reminder": "P2D", "escalation.grace": "off", "escalation.to": "quality_lead"}
    assert _levels_at(db, task_id, T0 + timedelta(minutes=1), defaults) == []
    assert _levels_at(db, task_id, T0 + timedelta(hours=23, minutes=59), defaults) == []
    assert _levels_at(db, task_id, T0 + timedelta(days=1, minutes=1), defaults) == ["reminder"]
    assert _levels_at(db, task_id, T0 + timedelta(days=2, minutes=1), defaults) == ["reminder", "overdue"]


def test_a_short_lead_time_is_unchanged_and_the_share_is_a_setting(db):
    task_id = _start(db)
    defaults = {"escalation.reminder": "PT6H", "escalation.grace": "off", "escalation.to": "quality_lead",
                "escalation.reminder.elapsed": "0.9"}
    # 90 % of two days = 43.2 h after creation, later than due - 6 h = 42 h
    assert _levels_at(db, task_id, T0 + timedelta(hours=42, minutes=30), defaults) == []
    assert _levels_at(db, task_id, T0 + timedelta(hours=43, minutes=15), defaults) == ["reminder"]


def test_reminder_share_setting_is_checked(monkeypatch):
    monkeypatch.setenv("PDCAFLOW_ESCALATION_REMINDER_ELAPSED", "0.25")
    settings = Settings.from_env()
    assert settings.escalation_reminder_elapsed == 0.25
    assert policy_from(_env_properties(settings)).reminder_elapsed == 0.25
    with pytest.raises(SettingsError, match="PDCAFLOW_ESCALATION_REMINDER_ELAPSED must be a fraction"):
        Settings.from_env({"PDCAFLOW_ESCALATION_REMINDER_ELAPSED": "2"})
    assert policy_from({"escalation.reminder.elapsed": "lots"}).reminder_elapsed == 0.5  # warned, default
