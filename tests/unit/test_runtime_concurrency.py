"""Two real threads act on the same task at the same moment: exactly one wins, the other gets a
clean ConflictError (never a crash, never two completions), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.errors import ConflictError
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
