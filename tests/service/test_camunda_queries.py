"""The /engine-rest list queries in SQL (storage/camunda_queries.py through Runtime.query_tasks):
`nameLike`'s `%` is the only wildcard, everything else — `_`, `*`, `?`, `[`, a backslash — is literal
and case counts, the same on SQLite and PostgreSQL; sorting puts undated tasks last ascending and
first descending on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from engine.runtime.lists import TaskFilter
from engine.views import Actor
from storage.models import HumanTask
from tests.conftest import FIXTURES

LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
NAMES = ["a_b", "axb", "a*b", "a?b", "a[b]", "a\\b", "A_B", "a%b"]


def test_name_like_is_literal_but_for_percent_and_case_sensitive(runtime, db):
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    for name in NAMES:
        task = runtime.start("simple_review", {}, Actor.system("test")).tasks[0]
        with db.write_engine.begin() as conn:
            conn.execute(update(HumanTask).where(HumanTask.id == task.id).values(name=name))

    def names(pattern: str) -> list[str]:
        return sorted(t.name for t in runtime.query_tasks(LEAD, TaskFilter(name_like=pattern)))

    assert names("a_b") == ["a_b"]
    assert names("a*b") == ["a*b"] and names("a?b") == ["a?b"] and names("a[b]") == ["a[b]"]
    assert names("a\\b") == ["a\\b"]
    assert names("a%b") == sorted(n for n in NAMES if n.startswith("a") and n.endswith("b"))
    assert names("A%") == ["A_B"] and names("%]") == ["a[b]"]
    assert runtime.count_tasks(LEAD, TaskFilter(name_like="%b")) == len(names("%b")) == 6


def test_sorting_by_due_date_puts_undated_tasks_last_then_first(runtime, db):
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    tasks = [runtime.start("simple_review", {}, Actor.system("test")).tasks[0] for _ in range(3)]
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for task, due in zip(tasks, (now + timedelta(days=2), None, now + timedelta(days=1)), strict=True):
        with db.write_engine.begin() as conn:
            conn.execute(update(HumanTask).where(HumanTask.id == task.id).values(due_at=due))
    ascending = [t.id for t in runtime.query_tasks(LEAD, TaskFilter(), [("dueDate", False)])]
    descending = [t.id for t in runtime.query_tasks(LEAD, TaskFilter(), [("dueDate", True)])]
    assert ascending == [tasks[2].id, tasks[0].id, tasks[1].id]
    assert descending == [tasks[1].id, tasks[0].id, tasks[2].id]
