"""The inbox queries: human_task_group.task_state follows the task through the database
triggers whatever writes it, the UNION visibility matches the rules, and the tab counts are exact."""

from __future__ import annotations

from sqlalchemy import select, update

from engine.views import Actor
from storage import queries
from storage.models import HumanTask, HumanTaskGroup
from tests.conftest import FIXTURES

REVIEWER = Actor("rita.reviewer", frozenset({"reviewers", "employee"}), "employee")
OTHER = Actor("rob.reviewer", frozenset({"reviewers"}), "employee")
OUTSIDER = Actor("otto.outsider", frozenset({"purchasing"}), "employee")
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


def _group_states(db) -> dict[str, str | None]:
    with db.read() as session:
        return dict(session.execute(select(HumanTaskGroup.task_id, HumanTaskGroup.task_state)).all())


def test_task_state_on_group_rows_follows_claim_unclaim_complete(runtime, db):
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    instance = runtime.start("simple_review", {"reference": "C-1"}, Actor.system("test"))
    task = instance.tasks[0]
    assert _group_states(db) == {task.id: "open"}
    runtime.claim(task.id, REVIEWER)
    assert _group_states(db) == {task.id: "claimed"}
    assert runtime.tasks(OTHER, state="open", in_groups=True) == []
    runtime.unclaim(task.id, REVIEWER)
    assert [t.id for t in runtime.tasks(OTHER, state="open", in_groups=True)] == [task.id]
    runtime.complete(task.id, REVIEWER, {"amount": 12})
    states = _group_states(db)
    assert states[task.id] == "completed"
    # a bulk Core update (no ORM) is followed too
    with db.write() as session:
        session.execute(update(HumanTask).where(HumanTask.id == task.id).values(state="cancelled"))
    assert _group_states(db)[task.id] == "cancelled"


def test_visibility_union_and_tab_counts(runtime, db):
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    ids = [runtime.start("simple_review", {"reference": f"C-{i}"}, Actor.system("test")).tasks[0].id
           for i in range(3)]
    runtime.claim(ids[0], REVIEWER)
    runtime.complete(ids[1], OTHER, {"amount": 5})
    with db.read() as session:  # completing ids[1] created the instance's next task
        later = set(session.scalars(select(HumanTask.id).where(HumanTask.id.not_in(ids),
                                                               HumanTask.state.in_(("open", "claimed")))))
        later_groups = set(session.scalars(select(HumanTaskGroup.group_name).where(HumanTaskGroup.task_id.in_(later))))
    reviewer_later = later if "reviewers" in later_groups else set()
    assert {t.id for t in runtime.tasks(REVIEWER)} == {ids[0], ids[2]} | reviewer_later
    assert [t.id for t in runtime.tasks(REVIEWER, mine=True)] == [ids[0]]
    assert [t.id for t in runtime.tasks(OTHER, state="completed", mine=True)] == [ids[1]]
    assert {t.id for t in runtime.tasks(OTHER, state="completed")} == {ids[1]}
    assert runtime.tasks(OUTSIDER) == [] and runtime.tasks(OUTSIDER, state="completed") == []
    assert {t.id for t in runtime.tasks(LEAD)} == {ids[0], ids[2]} | later
    lead_later = later if "quality_lead" in later_groups else set()
    assert {t.id for t in runtime.tasks(LEAD, state="open", in_groups=True)} == lead_later
    assert len(runtime.tasks(REVIEWER, limit=1)) == 1
    with db.read() as session:
        counts = queries.inbox_counts(session, REVIEWER.username, REVIEWER.groups, lead=False,
                                      tabs=["mine", "groups", "completed"])
        assert counts == {"mine": 1, "groups": 1 + len(reviewer_later), "completed": 0}
        counts = queries.inbox_counts(session, OTHER.username, OTHER.groups, lead=False,
                                      tabs=["mine", "groups", "completed"], process_key="simple_review")
        assert counts == {"mine": 0, "groups": 1 + len(reviewer_later), "completed": 1}
        assert queries.inbox_counts(session, LEAD.username, LEAD.groups, lead=True, tabs=["all", "groups"]) == {
            "all": 2 + len(later), "groups": len(lead_later)}
        assert queries.process_keys(session) == ["simple_review"]


def test_lead_list_is_in_inbox_order_across_states_and_pages(runtime, db):
    from datetime import UTC, datetime, timedelta

    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    ids = [runtime.start("simple_review", {"reference": f"C-{i}"}, Actor.system("test")).tasks[0].id
           for i in range(12)]
    base = datetime(2026, 5, 1, tzinfo=UTC)
    with db.write() as session:
        for i, task_id in enumerate(ids):
            session.execute(update(HumanTask).where(HumanTask.id == task_id).values(
                due_at=None if i % 3 == 0 else base + timedelta(days=i % 4), priority=50 + (i % 2) * 20,
                state="claimed" if i % 4 == 0 else "open", assignee="rita.reviewer" if i % 4 == 0 else None))
    with db.read() as session:
        rows = session.scalars(select(HumanTask)).all()
        expected = [r.id for r in sorted(rows, key=lambda r: (r.due_at is None, r.due_at or base, -r.priority,
                                                              r.created_at, r.id))]
    assert [t.id for t in runtime.tasks(LEAD)] == expected
    assert [t.id for t in runtime.tasks(LEAD, limit=5, offset=5)] == expected[5:10]
    assert [t.id for t in runtime.tasks(REVIEWER)] == expected  # the UNION path agrees


def _group_copies(db) -> dict[str, tuple]:
    with db.read() as session:
        return {r.task_id: (r.task_state, r.task_due_at, r.task_priority, r.task_created_at) for r in session.execute(
            select(HumanTaskGroup.task_id, HumanTaskGroup.task_state, HumanTaskGroup.task_due_at,
                   HumanTaskGroup.task_priority, HumanTaskGroup.task_created_at))}


def _task_keys(db) -> dict[str, tuple]:
    with db.read() as session:
        return {r.id: (r.state, r.due_at, r.priority, r.created_at) for r in session.execute(
            select(HumanTask.id, HumanTask.state, HumanTask.due_at, HumanTask.priority, HumanTask.created_at))}


def test_group_rows_copy_the_sort_keys_whatever_writes_the_task(runtime, db):
    """Migration 0018: due date, priority and creation time ride along on the group rows."""
    from datetime import UTC, datetime

    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    task = runtime.start("simple_review", {"reference": "C-1"}, Actor.system("test")).tasks[0]
    assert _group_copies(db)[task.id] == _task_keys(db)[task.id]
    runtime.set_due_date(task.id, LEAD, "2031-02-03")
    assert _group_copies(db)[task.id] == _task_keys(db)[task.id] and _task_keys(db)[task.id][1] is not None
    with db.write() as session:  # a bulk Core update (no ORM) is followed too
        session.execute(update(HumanTask).where(HumanTask.id == task.id).values(
            priority=90, due_at=datetime(2030, 1, 1, tzinfo=UTC)))
    assert _group_copies(db)[task.id][1:3] == (datetime(2030, 1, 1, tzinfo=UTC), 90)
    with db.write() as session:
        session.execute(update(HumanTask).where(HumanTask.id == task.id).values(due_at=None))
    assert _group_copies(db)[task.id] == _task_keys(db)[task.id]


def test_groups_tab_order_pages_and_overdue_count_from_the_group_rows(runtime, db):
    from datetime import UTC, datetime, timedelta

    from engine import clock

    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    ids = [runtime.start("simple_review", {"reference": f"C-{i}"}, Actor.system("test")).tasks[0].id
           for i in range(12)]
    now = clock.now()
    with db.write() as session:
        for i, task_id in enumerate(ids):
            session.execute(update(HumanTask).where(HumanTask.id == task_id).values(
                due_at=None if i % 3 == 0 else now + timedelta(days=(i % 4) - 2), priority=50 + (i % 2) * 20,
                state="claimed" if i % 4 == 0 else "open", assignee=OTHER.username if i % 4 == 0 else None))
    rows = _task_keys(db)
    far = datetime(9999, 1, 1, tzinfo=UTC)
    expected = sorted((t for t in ids if rows[t][0] == "open"),
                      key=lambda t: (rows[t][1] is None, rows[t][1] or far, -rows[t][2], rows[t][3], t))
    listed = [t.id for t in runtime.tasks(REVIEWER, state="open", in_groups=True)]
    assert listed == expected  # the first tasks of the group rows, in the order of the task rows
    assert [t.id for t in runtime.tasks(REVIEWER, state="open", in_groups=True, limit=3, offset=3)] == expected[3:6]
    assert [t.id for t in runtime.tasks(REVIEWER, state="open", in_groups=True, sort="priority")][:1] == \
        [min(expected, key=lambda t: (-rows[t][2], rows[t][1] is None, rows[t][1] or far, rows[t][3], t))]
    overdue = {t for t in ids if rows[t][0] in ("open", "claimed") and rows[t][1] and rows[t][1] < now}
    runtime.complete(ids[1], OTHER, {"amount": 5})  # completed by OTHER while nobody held it
    with db.read() as session:
        for who in (REVIEWER, OTHER):
            counts = queries.inbox_counts(session, who.username, who.groups, lead=False,
                                          tabs=["overdue", "completed"], now=now)
            assert counts == {"overdue": len(overdue - {ids[1]}), "completed": int(who is OTHER)}
        assert queries.inbox_counts(session, OUTSIDER.username, OUTSIDER.groups, lead=False, tabs=["overdue"],
                                    now=now) == {"overdue": 0}
