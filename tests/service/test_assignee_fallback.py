"""A task's computed assignee (`camunda:assignee="${owner}"`) must be an active user: otherwise the
task is created without an assignee — for its candidate groups, else its lane, else the quality
leads' Unassigned queue — audited as `assignee_unavailable`, and the quality leads are notified."""

from __future__ import annotations

from sqlalchemy import event, select

from engine import notifications
from engine.accounts import save_user, update_user
from storage.scheduling import InAppNotification
from tests.fixtures.runtime.helpers import LEAD, REVIEWER, audit_rows, deploy, only_open, open_tasks


def _people(db) -> None:
    save_user(db, "lena.lead", "quality_lead", password="correct-horse-9", email="lena@example.com")
    save_user(db, "rita.reviewer", "employee", password="correct-horse-9", groups=["reviewers"])
    save_user(db, "pia.production", "employee", password="correct-horse-9", groups=["production"])
    save_user(db, "olga.owner", "employee", password="correct-horse-9")


def _owner_task(runtime, owner: str):
    instance = runtime.start("rt_assign", {"owner": owner, "due": "2030-01-01"}, LEAD)
    return runtime.complete(only_open(instance).id, REVIEWER, {})


def _inbox(db, username: str) -> list[tuple[str, str]]:
    with db.read() as session:
        return [(n.kind, n.subject) for n in session.scalars(
            select(InAppNotification).where(InAppNotification.username == username).order_by(InAppNotification.id))]


def test_an_active_assignee_gets_the_task(runtime, db):
    _people(db)
    deploy(runtime, "assign")
    task = only_open(_owner_task(runtime, "olga.owner"))
    assert (task.assignee, task.state, task.groups) == ("olga.owner", "claimed", [])


def test_unknown_computed_assignee_falls_back_to_the_lane_and_the_leads_are_told(runtime, db):
    _people(db)
    deploy(runtime, "assign")
    instance = _owner_task(runtime, "nobody.here")
    task = only_open(instance)
    # the task is in the lane "reviewers" and names no candidates: the lane gets it, unclaimed
    assert (task.name, task.assignee, task.state, task.groups) == ("Owner acts", None, "open", ["reviewers"])
    assert [t.id for t in runtime.tasks(REVIEWER)] == [task.id]
    why = [r.payload for r in audit_rows(runtime, instance.id) if r.type == "assignee_unavailable"]
    assert why == [{"task": "Owner acts", "assignee": "nobody.here", "reason": "unknown", "groups": ["reviewers"],
                    "candidate_users": []}]
    notifications.notify_task_events(db)
    lead_kinds = [k for k, _ in _inbox(db, "lena.lead")]
    assert "assignee_unavailable" in lead_kinds and "unassigned_task" not in lead_kinds
    subject = dict(_inbox(db, "lena.lead"))["assignee_unavailable"]
    assert subject == "Assignee not available: Owner acts"
    with db.read() as session:
        body = session.scalar(select(InAppNotification.body).where(
            InAppNotification.username == "lena.lead", InAppNotification.kind == "assignee_unavailable"))
    assert "nobody.here, who has no account" in body and "offered to reviewers instead" in body
    assert ("new_task", "New task for reviewers: Owner acts") in _inbox(db, "rita.reviewer")


def test_deactivated_assignee_without_candidates_is_held_for_the_quality_leads(runtime, db):
    _people(db)
    update_user(db, "olga.owner", LEAD, active=False)
    deploy(runtime, "bad_assignee")
    instance = runtime.start("rt_bad_assignee", {"owner": "olga.owner"}, LEAD)
    task = only_open(instance)
    assert (task.assignee, task.state, task.groups, task.candidate_users) == (None, "open", [], [])
    assert [t.id for t in runtime.tasks(LEAD, unassigned=True)] == [task.id]  # the Unassigned queue
    assert runtime.tasks(REVIEWER) == []
    why = next(r for r in audit_rows(runtime, instance.id) if r.type == "assignee_unavailable")
    assert why.payload["reason"] == "deactivated" and why.payload["groups"] == []
    notifications.notify_task_events(db)
    # one notice, saying why; not a second "unassigned" one about the same task
    assert [k for k, _ in _inbox(db, "lena.lead")] == ["assignee_unavailable"]
    with db.read() as session:
        body = session.scalar(select(InAppNotification.body).where(InAppNotification.username == "lena.lead"))
    assert "olga.owner, who is deactivated" in body and "waits in the Unassigned queue" in body
    assert _inbox(db, "olga.owner") == []
    # the lead assigns it to someone who can do it
    assert runtime.assign(task.id, LEAD, "rita.reviewer").assignee == "rita.reviewer"


def test_one_account_query_per_save_and_only_when_an_assignee_is_named(runtime, db):
    _people(db)
    deploy(runtime, "assignee_groups", "assign")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "app_user" in statement:
            statements.append(statement)

    engine = db.write_engine  # the engine units of work write through
    event.listen(engine, "before_cursor_execute", count)
    try:
        instance = runtime.start("rt_assignee_groups", {"first": "pia.production", "second": "ghost.user"}, LEAD)
        assert len(statements) == 1  # both new tasks' assignees in one look-up
        statements.clear()
        runtime.start("rt_assign", {"owner": "olga.owner", "due": "2030-01-01"}, LEAD)  # first task: groups only
        assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", count)
    by_name = {t.name: t for t in open_tasks(instance)}
    assert (by_name["First owner acts"].assignee, by_name["First owner acts"].state) == ("pia.production", "claimed")
    second = by_name["Second owner acts"]
    assert (second.assignee, second.state, second.groups) == (None, "open", ["production"])
