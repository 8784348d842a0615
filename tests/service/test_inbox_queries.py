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
