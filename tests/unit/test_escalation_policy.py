"""Escalation policy: environment defaults, process and task camunda:properties."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.escalation import _env_properties, policy_for, policy_from
from storage.models import ProcessDefinition
from tests.conftest import FIXTURES


def test_defaults_from_environment(monkeypatch):
    monkeypatch.setenv("PDCAFLOW_ESCALATION_REMINDER", "PT4H")
    monkeypatch.setenv("PDCAFLOW_ESCALATION_GRACE", "P2D")
    monkeypatch.setenv("PDCAFLOW_ESCALATION_TO", "quality_lead,user:boss")
    monkeypatch.setenv("PDCAFLOW_ESCALATION_LEVEL3", "P7D")
    monkeypatch.setenv("PDCAFLOW_ESCALATION_LEVEL3_TO", "admin")
    policy = policy_from(_env_properties())
    assert [(lv.name, lv.offset, lv.to) for lv in policy.levels] == [
        ("reminder", -timedelta(hours=4), ()), ("overdue", timedelta(0), ()),
        ("escalation", timedelta(days=2), ("quality_lead", "user:boss")),
        ("escalation_3", timedelta(days=7), ("admin",))]
    assert policy.lookahead == timedelta(hours=4)


def test_levels_can_be_switched_off():
    policy = policy_from({"escalation.reminder": "off", "escalation.grace": "0"})
    assert [lv.name for lv in policy.levels] == ["overdue"]
    assert not policy_from({"escalation.enabled": "false"}).enabled


def test_process_and_task_properties_override(runtime):
    runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
    defaults = {"escalation.reminder": "P1D", "escalation.grace": "P1D", "escalation.to": "quality_lead"}
    with runtime.db.read() as s:
        definition_id = s.scalar(select(ProcessDefinition.id).where(ProcessDefinition.key == "overdue_task"))
        check = policy_for(s, definition_id, "Task_Check", defaults)
        fix = policy_for(s, definition_id, "Task_Fix", defaults)
    assert [(lv.name, lv.offset) for lv in check.levels] == [
        ("reminder", -timedelta(days=1)), ("overdue", timedelta(0)), ("escalation", timedelta(hours=12))]
    assert [(lv.name, lv.offset, lv.to) for lv in fix.levels] == [
        ("reminder", -timedelta(hours=2), ()), ("overdue", timedelta(0), ()),
        ("escalation", timedelta(days=1), ("quality_lead",)), ("escalation_2", timedelta(days=3), ("management",))]
