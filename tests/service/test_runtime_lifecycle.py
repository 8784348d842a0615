"""Audit trail, spec-less state serialization and multi-instance user tasks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine.errors import NotFoundError
from engine.runtime import Runtime
from engine.views import Actor
from storage.models import ProcessDefinition, ProcessInstance
from tests.fixtures.runtime.helpers import LEAD, REVIEWER, add_users, audit_rows, deploy, only_open

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _summary(rows):
    return [(r.type, r.actor, r.task_id is not None) for r in rows]


def test_audit_sequence_of_one_run(runtime):
    deploy(runtime, "script")
    instance = runtime.start("rt_script", {"reference": "C-42"}, LEAD)
    task = only_open(instance)
    runtime.claim(task.id, REVIEWER)
    runtime.unclaim(task.id, REVIEWER)
    runtime.claim(task.id, REVIEWER)
    runtime.complete(task.id, REVIEWER, {"divisor": 0})
    runtime.retry(instance.id, LEAD, {"divisor": 2, "bonus": 0})
    rows = audit_rows(runtime, instance.id)
    assert _summary(rows) == [
        ("start", LEAD.username, False),
        ("task_created", None, True),
        ("claim", REVIEWER.username, True),
        ("unclaim", REVIEWER.username, True),
        ("claim", REVIEWER.username, True),
        ("complete", REVIEWER.username, True),
        ("incident", REVIEWER.username, True),
        ("retry", LEAD.username, False),
        ("end", None, False),
    ]
    by_type = {r.type: r for r in rows}
    assert by_type["start"].payload == {"key": "rt_script", "version": 1, "business_key": "C-42"}
    assert by_type["task_created"].task_id == task.id
    assert by_type["task_created"].payload == {"task": "Input", "assignee": None, "groups": ["reviewers"]}
    assert by_type["complete"].task_id == task.id
    assert by_type["complete"].payload == {"task": "Input", "data": {"divisor": 0}}
    assert by_type["incident"].payload["task"] == "Calculate"
    assert "ZeroDivisionError" in by_type["incident"].payload["message"]
    assert by_type["retry"].payload == {"data": {"divisor": 2, "bonus": 0}}
    assert all(r.instance_id == instance.id for r in rows)
    ids = [r.id for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    # the same trail is what the instance view shows
    assert [a.type for a in runtime.instance(instance.id).audit] == [r.type for r in rows]


def test_audit_sequence_with_timer_and_cancel(runtime):
    deploy(runtime, "boundary")
    with time_machine.travel(T0, tick=False):
        instance = runtime.start("rt_timer_boundary", {}, LEAD)
    before = audit_rows(runtime, instance.id)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        runtime.fire_due_timers()
        runtime.cancel(instance.id, LEAD, "customer withdrew")
    rows = audit_rows(runtime, instance.id)
    assert _summary(rows) == [
        ("start", LEAD.username, False),
        ("task_created", None, True),
        ("timer_fired", "scheduler", True),
        ("task_cancelled", None, True),
        ("task_created", None, True),
        ("cancel", LEAD.username, False),
        ("task_cancelled", None, True),
    ]
    assert rows[2].payload == {"timer": "Timer_Late", "worker": "runtime"}
    assert rows[: len(before)] == before  # append-only: earlier rows are untouched
    assert rows[2].at == T0 + timedelta(hours=2)


def test_state_is_stored_without_the_spec_and_restores_in_a_new_runtime(runtime, db):
    add_users(runtime, "olga.owner")
    deploy(runtime, "assign")
    instance = runtime.start("rt_assign", {"owner": "olga.owner", "due": "2026-04-01"}, LEAD)
    with db.read() as session:
        state = session.scalar(select(ProcessInstance.state).where(ProcessInstance.id == instance.id))
        spec_json = session.scalar(select(ProcessDefinition.spec_json).where(ProcessDefinition.key == "rt_assign"))
    state = bytes(state)
    text = state.decode()
    parsed = json.loads(text)
    assert "spec" not in parsed and "subprocess_specs" not in parsed
    assert '"task_specs"' not in text
    for spec_only in ("Owner acts", "Audit", "${owner}", "P2D", "candidateGroups", "reviewers, auditors"):
        assert spec_only not in text, spec_only
    assert len(state) < len(spec_json) and len(state) < 8000
    # a fresh Runtime has an empty spec cache, restores the instance and carries on
    fresh = Runtime(db)
    instance = fresh.complete(only_open(instance).id, REVIEWER, {"note": "after restart"})
    owner_task = only_open(instance)
    assert owner_task.name == "Owner acts" and owner_task.assignee == "olga.owner"
    instance = Runtime(db).complete(owner_task.id, Actor("olga.owner"), {})
    instance = Runtime(db).complete(only_open(instance).id, Actor("aldo", frozenset({"auditors"})), {})
    assert instance.status == "completed" and instance.data["note"] == "after restart"


def test_multi_instance_user_task_per_action(runtime):
    add_users(runtime, "anna", "bert")
    deploy(runtime, "multi")
    actions = [{"owner": "anna", "what": "fix the seal"}, {"owner": "bert", "what": "train staff"},
               {"owner": "anna", "what": "update the manual"}]
    instance = runtime.start("rt_multi", {"actions": actions}, LEAD)
    tasks = [t for t in instance.tasks if t.name == "Do action"]
    assert len(tasks) == 3
    assert sorted(t.assignee for t in tasks) == ["anna", "anna", "bert"]
    assert all(t.state == "claimed" and t.groups == [] for t in tasks)
    anna, bert = Actor("anna"), Actor("bert")
    assert len(runtime.tasks(anna, mine=True)) == 2 and len(runtime.tasks(bert, mine=True)) == 1
    bert_task = next(t for t in tasks if t.assignee == "bert")
    with pytest.raises(NotFoundError):  # bert's task is hidden from anna: 404
        runtime.complete(bert_task.id, anna, {"action.done_at": "2026-03-03"})
    instance = runtime.complete(bert_task.id, bert, {"action.done_at": "2026-03-03"})
    assert instance.status == "running"
    for i, task in enumerate(t for t in tasks if t.assignee == "anna"):
        instance = runtime.complete(task.id, anna, {"action.done_at": f"2026-03-1{i}"})
    # every completion wrote back into its own element of the collection
    by_what = {a["what"]: a for a in instance.data["actions"]}
    assert by_what["train staff"] == {"owner": "bert", "what": "train staff", "done_at": "2026-03-03"}
    assert {by_what["fix the seal"]["done_at"], by_what["update the manual"]["done_at"]} == {
        "2026-03-10", "2026-03-11"}
    assert all(a["owner"] in ("anna", "bert") for a in instance.data["actions"])
    assert only_open(instance).name == "Check actions"
    instance = runtime.complete(only_open(instance).id, LEAD, {})
    assert instance.status == "completed"


def test_multi_instance_with_empty_collection_skips_the_task(runtime):
    deploy(runtime, "multi")
    instance = runtime.start("rt_multi", {"actions": []}, LEAD)
    assert only_open(instance).name == "Check actions"
