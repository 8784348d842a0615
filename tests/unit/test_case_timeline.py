"""The case timeline helpers (web/case_timeline.py): labelled values, reassignments with the new
assignee and date, waiting events with their due times, and what a step is about."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from engine.views import AuditView
from web.case_timeline import ahead, earlier_answers, step_about, timeline

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _task(**kw):
    base = dict(id="t1", name="Plan", state="completed", form=[{"id": "what", "label": "What will be done (short)"}],
                values={"what": "Replace the mould"}, completed_by="lena", completed_at=T0, created_at=T0,
                assignee="lena", groups=["quality_lead"], due_at=None, context={})
    return SimpleNamespace(**{**base, **kw})


def test_timeline_labels_values_and_names_new_assignee_and_date():
    instance = SimpleNamespace(tasks=[_task()], audit=[
        AuditView(T0, "public", "start", None, {}),
        AuditView(T0, "lena", "complete", "t1", {"task": "Plan", "data": {"what": "Replace the mould", "_x": 1}}),
        AuditView(T0, "lena", "assign", "t2", {"task": "Act", "from": "nobody", "to": "rita"}),
        AuditView(T0, "lena", "due_changed", "t2", {"task": "Act", "to": "2026-06-01T12:00:00+00:00"}),
        AuditView(T0, "lena", "comment", None, {"comment": "7", "excerpt": "short"}),
        AuditView(T0, None, "external_task_created", None, {}),
    ])
    rows = timeline(instance, [{"id": "7", "body": "the whole comment"}])
    assert [r["kind"] for r in rows] == ["comment", "due_changed", "assign", "complete", "start"]
    assert rows[0]["detail"] == "the whole comment"
    assert rows[1]["detail"] == "to 2026-06-01 12:00 UTC" and rows[2]["detail"] == "to rita"
    assert rows[3]["fields"] == [{"id": "what", "label": "What will be done", "value": "Replace the mould"}]
    assert rows[4]["who"] == "the customer"


def test_ahead_lists_open_tasks_and_waiting_timers_soonest_first():
    open_task = _task(id="t2", name="Act", state="claimed", assignee="rita", due_at=datetime(2026, 6, 9, tzinfo=UTC))
    diagram = {"waiting": [{"waiting_for": "timer", "name": "Wait before checking",
                            "due": "2026-06-02T00:00:00+00:00"}]}
    other = _task(id="t3", name="Buy parts", state="open", assignee=None, groups=["purchasing"], due_at=None)
    instance = SimpleNamespace(tasks=[open_task, _task(), other])
    rows = ahead(instance, [open_task, _task()], diagram)
    assert [(r["name"], r["who"], r["task_id"]) for r in rows] == [
        ("Wait before checking", "the clock", None), ("Act", "rita", "t2"),
        ("Buy parts", "purchasing", None)]  # another group's step: listed, not linked
    assert rows[0]["due"] == datetime(2026, 6, 2, tzinfo=UTC)


def test_step_about_shows_the_record_the_form_edits_without_the_edited_parts():
    task = _task(state="open", form=[{"id": "action.done_at"}, {"id": "action.result"}],
                 context={"action": {"id": "1-1", "what": "Replace the mould", "owner": "rob", "done_at": None,
                                     "result": None}})
    [about] = step_about(task)
    assert about["title"] == "Action (as planned)"
    assert [(f["label"], f["value"]) for f in about["fields"]] == [("What", "Replace the mould"), ("Owner", "rob")]


def test_earlier_answers_newest_first_without_the_current_task():
    older = _task(id="a", name="Analyse", values={"root_cause": "Worn"}, form=[{"id": "root_cause", "label": "Root cause"}],
                  completed_at=datetime(2026, 5, 1, tzinfo=UTC))
    instance = SimpleNamespace(tasks=[older, _task(), _task(id="cur", state="open", values={})])
    assert [a["task"] for a in earlier_answers(instance, "cur")] == ["Plan", "Analyse"]
