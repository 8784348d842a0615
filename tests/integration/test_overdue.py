"""Overdue tasks: a quality lead lists every overdue task of every process; employees see their own."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from engine import clock
from tests.conftest import FIXTURES
from tests.integration.conftest import login, start_review, token


def test_lead_lists_overdue_tasks_across_processes(client, runtime, lead):
    runtime.deploy_paths([FIXTURES / "scheduler" / "overdue_task.bpmn"])
    review = start_review(runtime, "C-70")                        # due P2D
    other = runtime.start("overdue_task", {}, lead)                # a second process
    fresh_at = clock.now() + timedelta(days=3)
    with time_machine.travel(fresh_at, tick=False):
        start_review(runtime, "C-71")                              # created later: not overdue yet
        lena, rita = token(client, "lena.lead"), token(client, "rita.reviewer")
        overdue = client.get("/api/v1/tasks?overdue=1", headers=lena).get_json()
        due_dates = [t["due_at"] for t in overdue]
        assert {t["instance_id"] for t in overdue} >= {review.id}
        assert all(d is not None and d < fresh_at.isoformat() for d in due_dates)
        assert due_dates == sorted(due_dates)
        other_tasks = [t for t in runtime.instance(other.id).tasks if t.due_at is not None]
        if other_tasks and other_tasks[0].due_at < fresh_at:
            assert other.id in {t["instance_id"] for t in overdue}
        assert "C-71" not in {runtime.instance(t["instance_id"]).business_key for t in overdue}
        # an employee sees only the overdue tasks of their own groups
        mine = client.get("/api/v1/tasks?overdue=1", headers=rita).get_json()
        assert review.id in {t["instance_id"] for t in mine}
        assert {t["id"] for t in mine} <= {t["id"] for t in overdue}
        assert all("reviewers" in t["groups"] or t["assignee"] == "rita.reviewer" for t in mine)

        login(client, "lena.lead")
        html = client.get("/inbox?tab=overdue").get_data(as_text=True)
        assert "Overdue" in html and "Assess request" in html
        assert html.count('class="badge overdue"') == len(overdue)
