"""Escalations on GET /tasks/{id} and the caller's in-app notifications (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from engine import clock
from engine.escalation import escalate_overdue
from engine.notifications import notify_task_events
from tests.integration.conftest import start_review, token


def test_overdue_task_shows_escalations_and_notifications(client, runtime, db):
    start_review(runtime, "C-42")
    rita = token(client, "rita.reviewer")
    task = client.get("/api/v1/tasks?state=open", headers=rita).get_json()[0]
    notify_task_events(db)  # "new task for your group"
    inbox = client.get("/api/v1/notifications", headers=rita).get_json()
    assert inbox["unread"] >= 1 and any(item["task_id"] == task["id"] for item in inbox["items"])

    # simple_review's first task is due P2D after creation: go past due and the grace period.
    with time_machine.travel(clock.now() + timedelta(days=3, hours=1), tick=False):
        escalate_overdue(db)
    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=rita).get_json()
    levels = [e["level"] for e in detail["escalations"]]
    assert "overdue" in levels and "escalation" in levels
    overdue = next(e for e in detail["escalations"] if e["level"] == "overdue")
    assert "rita.reviewer" in overdue["notified"]

    marked = client.post("/api/v1/notifications/read", headers=rita, json={})
    assert marked.status_code == 200 and marked.get_json()["marked"] >= 1
    assert client.get("/api/v1/notifications?unread=1", headers=rita).get_json() == {"items": [], "unread": 0}


def test_notifications_need_a_token(client):
    response = client.get("/api/v1/notifications")
    assert response.status_code == 401 and response.get_json()["error"]["code"]


def test_lead_changes_due_date_and_escalation_restarts(client, runtime, db):
    start_review(runtime, "C-43")
    rita, lena = token(client, "rita.reviewer"), token(client, "lena.lead")
    task = client.get("/api/v1/tasks?state=open", headers=rita).get_json()[0]
    forbidden = client.post(f"/api/v1/tasks/{task['id']}/due", headers=rita, json={"due_at": "P5D"})
    assert forbidden.status_code == 403
    bad = client.post(f"/api/v1/tasks/{task['id']}/due", headers=lena, json={"due_at": "next tuesday"})
    assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["field"] == "due_at"
    with time_machine.travel(clock.now() + timedelta(days=3, hours=1), tick=False):
        escalate_overdue(db)
        first_cycle = client.get(f"/api/v1/tasks/{task['id']}", headers=lena).get_json()["escalations"]
        assert {"overdue", "escalation"} <= {e["level"] for e in first_cycle}
        moved = client.post(f"/api/v1/tasks/{task['id']}/due", headers=lena, json={"due_at": "PT1H"})
        assert moved.status_code == 200
        new_due = moved.get_json()["due_at"]
        escalate_overdue(db)
        after = client.get(f"/api/v1/tasks/{task['id']}", headers=lena).get_json()["escalations"]
        assert [e for e in after if e["due_at"] == new_due] == [] or all(
            e["level"] == "reminder" for e in after if e["due_at"] == new_due)
    with time_machine.travel(clock.now() + timedelta(days=3, hours=3), tick=False):
        escalate_overdue(db)
        after = client.get(f"/api/v1/tasks/{task['id']}", headers=lena).get_json()["escalations"]
        assert "overdue" in {e["level"] for e in after if e["due_at"] == new_due}  # a new cycle for the new date
    audit = [a for a in runtime.instance(task["instance_id"]).audit if a.type == "due_changed"]
    assert len(audit) == 1 and audit[0].actor == "lena.lead"


def test_task_page_shows_due_date_form_to_leads(client, runtime):
    from tests.integration.conftest import login

    start_review(runtime, "C-44")
    login(client, "lena.lead")
    task = runtime.tasks(runtime_lead())[0]
    html = client.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'name="due_at"' in html and "Change due date" in html


def runtime_lead():
    from engine.views import Actor

    return Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
