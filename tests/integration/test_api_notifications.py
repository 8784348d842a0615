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
