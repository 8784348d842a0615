"""Two real threads act on the same task at the same moment: exactly one wins, the other gets a
clean ConflictError (never a crash, never two completions), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select, update

from engine.errors import ConflictError
from engine.runtime import Runtime
from storage.models import HumanTask
from tests.conftest import make_db, start_racing, wait_for_a_lock_wait
from tests.fixtures.runtime.helpers import LEAD, REVIEWER, REVIEWER2, audit_rows, deploy, only_open

ROUNDS = 20


def _race(calls: list[Any]) -> list[tuple[str, Any]]:
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any]] = [("none", None)] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", calls[i]())
        except ConflictError as exc:
            results[i] = ("conflict", exc)
        except BaseException as exc:  # anything else is a bug the test must show
            results[i] = ("error", exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def deployed(runtime):
    deploy(runtime, "assign")
    return runtime


def test_concurrent_completion_exactly_one_wins(deployed):
    runtime = deployed
    for _ in range(ROUNDS):
        instance = runtime.start("rt_assign", {"owner": "olga.owner", "due": "2030-01-01"}, LEAD)
        task = only_open(instance)
        results = _race([lambda task_id=task.id: runtime.complete(task_id, REVIEWER, {"note": "from rita"}),
                         lambda task_id=task.id: runtime.complete(task_id, REVIEWER2, {"note": "from rolf"})])
        kinds = sorted(kind for kind, _ in results)
        assert kinds == ["conflict", "ok"], results
        winner = REVIEWER if results[0][0] == "ok" else REVIEWER2
        after = runtime.instance(instance.id)
        done = next(t for t in after.tasks if t.id == task.id)
        assert done.state == "completed" and done.completed_by == winner.username
        completes = [a for a in audit_rows(runtime, instance.id) if a.type == "complete"]
        assert len(completes) == 1 and completes[0].actor == winner.username
        assert after.data["note"] == f"from {winner.username.split('.')[0]}"
        # the next task exists exactly once
        assert [t.name for t in after.tasks if t.state in ("open", "claimed")] == ["Owner acts"]


def test_concurrent_claims_exactly_one_wins(deployed):
    runtime = deployed
    for _ in range(ROUNDS):
        instance = runtime.start("rt_assign", {"owner": "olga.owner", "due": "2030-01-01"}, LEAD)
        task = only_open(instance)
        results = _race([lambda task_id=task.id: runtime.claim(task_id, REVIEWER),
                         lambda task_id=task.id: runtime.claim(task_id, REVIEWER2)])
        kinds = sorted(kind for kind, _ in results)
        assert kinds == ["conflict", "ok"], results
        winner = results[0][1] if results[0][0] == "ok" else results[1][1]
        loser = results[1][1] if results[0][0] == "ok" else results[0][1]
        assert winner.assignee in str(loser)  # the conflict names who holds it
        assert runtime.task(task.id, LEAD).assignee == winner.assignee
        claims = [a for a in audit_rows(runtime, instance.id) if a.type == "claim"]
        assert len(claims) == 1 and claims[0].actor == winner.assignee


def test_claim_racing_completion_never_both(deployed):
    runtime = deployed
    for _ in range(ROUNDS // 2):
        instance = runtime.start("rt_assign", {"owner": "olga.owner", "due": "2030-01-01"}, LEAD)
        task = only_open(instance)
        results = _race([lambda task_id=task.id: runtime.claim(task_id, REVIEWER),
                         lambda task_id=task.id: runtime.complete(task_id, REVIEWER2, {})])
        assert all(kind in ("ok", "conflict") for kind, _ in results), results
        view = runtime.task(task.id, LEAD)
        if results[1][0] == "ok":
            assert view.state == "completed" and view.completed_by == REVIEWER2.username
        else:
            assert view.state == "claimed" and view.assignee == REVIEWER.username


def test_two_schedulers_fire_a_timer_once(runtime):
    deploy(runtime, "timers")
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for _ in range(ROUNDS // 2):
        with time_machine.travel(t0, tick=False):
            instance = runtime.start("rt_timer_wait", {}, LEAD)
        with time_machine.travel(t0 + timedelta(hours=2), tick=False):
            results = _race([lambda: runtime.fire_due_timers(worker="a").fired,
                             lambda: runtime.fire_due_timers(worker="b").fired])
        assert all(kind == "ok" for kind, _ in results), results
        assert sum(value for _, value in results) == 1
        types = [a.type for a in audit_rows(runtime, instance.id)]
        assert types == ["start", "timer_fired", "task_created"]
        assert [t.name for t in runtime.instance(instance.id).tasks] == ["After the wait"]


def test_completion_racing_the_boundary_timer(runtime):
    deploy(runtime, "boundary")
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for _ in range(ROUNDS // 2):
        with time_machine.travel(t0, tick=False):
            instance = runtime.start("rt_timer_boundary", {}, LEAD)
        task = only_open(instance)
        with time_machine.travel(t0 + timedelta(hours=2), tick=False):
            results = _race([lambda task_id=task.id: runtime.complete(task_id, REVIEWER, {}),
                             lambda: runtime.fire_due_timers().fired])
        assert results[1][0] == "ok" and results[0][0] in ("ok", "conflict"), results
        after = runtime.instance(instance.id)
        states = {t.name: t.state for t in after.tasks}
        types = [a.type for a in after.audit]
        if results[0][0] == "ok":  # the user was first: the timer is gone
            assert results[1][1] == 0
            assert after.status == "completed" and states == {"Answer": "completed"}
            assert "timer_fired" not in types
        else:  # the timer was first: the task was cancelled under the user
            assert results[1][1] == 1
            assert states == {"Answer": "cancelled", "Escalated": "open"}
            assert types.count("timer_fired") == 1 and "complete" not in types


@pytest.mark.parametrize("lead_action", ["assign", "due"])
def test_a_lead_racing_a_completion_never_reopens_the_task(lead_action, pg_database, tmp_path):
    """Found by the scale-out load test: a lead's reassignment read the task open, a completion
    committed, and the reassignment's update then set the completed task back to open/claimed.
    The interleaving is forced: the completing transaction holds the task row while the lead's
    update waits for it (PostgreSQL only: SQLite never runs two write transactions at once)."""
    db = make_db("postgresql", tmp_path, pg_database)
    try:
        runtime = Runtime(db)
        deploy(runtime, "assign")
        task = only_open(runtime.start("rt_assign", {"owner": "olga.owner", "due": "2030-01-01"}, LEAD))
        act = {"assign": lambda: runtime.assign(task.id, LEAD, None),
               "due": lambda: runtime.set_due_date(task.id, LEAD, "2031-01-01")}[lead_action]
        outcome: list[object] = []

        def lead() -> None:
            try:
                outcome.append(act())
            except Exception as exc:
                outcome.append(exc)

        with db.write() as session:  # the completion, between taking the task and its commit
            session.execute(select(HumanTask).where(HumanTask.id == task.id).with_for_update())
            session.execute(update(HumanTask).where(HumanTask.id == task.id)
                            .values(state="completed", completed_by=REVIEWER.username))
            other = threading.Thread(target=lead)
            other.start()
            wait_for_a_lock_wait(db, "the lead's update")  # until it waits for this transaction's task row
        other.join(30)
        [result] = outcome
        assert isinstance(result, ConflictError) and "was completed by rita.reviewer" in str(result), result
        view = runtime.task(task.id, LEAD)
        assert view.state == "completed" and view.completed_by == REVIEWER.username
        assert view.due_at is None or view.due_at.year != 2031
        assert not [a for a in audit_rows(runtime, task.instance_id) if a.type in ("assign", "due_changed")]
    finally:
        db.dispose()


def test_parallel_tasks_completed_at_once_both_count(runtime, monkeypatch):
    """Two people complete the two parallel tasks of one instance at the same moment. The second
    waits for the first's instance lock; on PostgreSQL its statement's snapshot predates the first's
    commit, yet its save must not take the first's completed task for an open one (and cancel it) nor
    miss the task the join then creates."""
    import time
    from pathlib import Path

    from engine.runtime import tasks as runtime_tasks

    runtime.deploy_paths([Path(__file__).parents[1] / "constructs" / "models" / "ut_parallel_join.bpmn"], LEAD)
    instance = runtime.start("ut_parallel_join", {}, LEAD)
    by_element = {t.spec_id: t for t in instance.tasks}
    took, take_task = threading.Event(), runtime_tasks.store.take_task
    results: dict[str, Any] = {}

    def slow_take(conn, task_id, *args):  # the first completion holds the instance lock a while
        taken = take_task(conn, task_id, *args)
        if task_id == by_element["contain"].id:
            took.set()
            if runtime.db.dialect == "postgresql":
                wait_for_a_lock_wait(runtime.db, "the second completion")
            else:
                time.sleep(0.3)  # SQLite: the second waits for this process's writer turn
        return taken

    monkeypatch.setattr(runtime_tasks.store, "take_task", slow_take)

    def complete(element: str, actor: Any) -> None:
        try:
            results[element] = runtime.complete(by_element[element].id, actor, {})
        except BaseException as exc:  # noqa: BLE001 - asserted below
            results[element] = exc

    first = threading.Thread(target=complete, args=("contain", REVIEWER))
    first.start()
    assert took.wait(30)
    second = threading.Thread(target=complete, args=("reply", REVIEWER2))
    second.start()
    first.join(60)
    second.join(60)
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    after = runtime.instance(instance.id)
    states = sorted((t.spec_id, t.state) for t in after.tasks)
    assert states == [("contain", "completed"), ("reply", "completed"), ("review", "open")]
    assert not [a for a in audit_rows(runtime, instance.id) if a.type == "task_cancelled"]


def test_a_stale_cancellation_leaves_a_completed_task_completed(runtime):
    """The defensive guard behind the projection's cancellations: a save that decided on task rows older
    than someone's completion (the bug behind test_parallel_tasks_completed_at_once_both_count) cancels
    only tasks still open, so the completion stands instead of becoming a cancellation."""
    from pathlib import Path

    from storage import instances as store

    runtime.deploy_paths([Path(__file__).parents[1] / "constructs" / "models" / "ut_parallel_join.bpmn"], LEAD)
    instance = runtime.start("ut_parallel_join", {}, LEAD)
    by_element = {t.spec_id: t for t in instance.tasks}
    runtime.complete(by_element["contain"].id, REVIEWER, {})
    now = datetime.now(UTC)
    with runtime.db.write() as session:  # what a save working from a snapshot older than that completion wrote
        store.cancel_tasks(session.connection(), [{"b_id": by_element["contain"].id, "completed_at": now},
                                                  {"b_id": by_element["reply"].id, "completed_at": now}])
    states = {t.spec_id: (t.state, t.completed_by) for t in runtime.instance(instance.id).tasks}
    assert states["contain"] == ("completed", REVIEWER.username)
    assert states["reply"] == ("cancelled", None)  # an open task is still cancelled


def test_an_escalation_applies_only_to_a_task_still_open(runtime, monkeypatch):
    """The escalation scheduler decides that a task is overdue while its person completes it. The
    escalation (its notification and audit entry) is recorded only if the task was still open when it
    was: on PostgreSQL the completion used to commit between the escalation's read of the task and its
    write, and the quality leads were told a task just completed was overdue."""

    import time_machine

    from engine import escalation
    from tests.conftest import FIXTURES

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(t0, tick=False):
        runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
        task = runtime.start("overdue_task", {}, LEAD).tasks[0]
    audience, completion, outcome = escalation._audience, [], []

    def complete() -> None:
        try:
            outcome.append(runtime.complete(task.id, REVIEWER, {}))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcome.append(exc)

    def audience_then_completed(session, row, level):  # the completion comes in between
        if not completion:
            completion.append(threading.Thread(target=complete))
            start_racing(runtime.db, completion[0], "the completion")  # commits, or waits for the escalation's lock
        return audience(session, row, level)

    monkeypatch.setattr(escalation, "_audience", audience_then_completed)
    defaults = {"escalation.reminder": "off", "escalation.grace": "off", "escalation.to": "quality_lead"}
    with time_machine.travel(t0 + timedelta(days=2, minutes=1), tick=False):
        escalation.escalate_overdue(runtime.db, "w1", defaults=defaults)
        completion[0].join(60)
    assert len(outcome) == 1 and not isinstance(outcome[0], BaseException), outcome
    entries = [(a.type, a.payload) for a in audit_rows(runtime, task.instance_id)
               if a.type in ("escalation", "complete")]
    # in commit order: an escalation, if any, before the completion
    assert [t for t, _ in entries] in (["escalation", "complete"], ["complete"]), entries
