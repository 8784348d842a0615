"""A timer start in incident is visible to quality leads (processes and instances pages, API) and
they re-arm it there; employees neither see nor retry it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from engine.runtime.timers import TimerPolicy
from engine.schedules import start_due, sync_schedules
from tests.integration.conftest import login, post, token
from tests.unit.helpers_schedules import FlakyRuntime, dated_process

DUE = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _failed_timer_start(db, tmp_path) -> None:
    """weekly_review's timeDate start fails its only attempt: the schedule is in incident."""
    flaky = FlakyRuntime(db, failures=1)
    with time_machine.travel(DUE - timedelta(hours=1), tick=False):
        flaky.deploy_paths([dated_process(tmp_path, DUE)])
        sync_schedules(db)
    with time_machine.travel(DUE, tick=False):
        assert start_due(flaky, "w1", TimerPolicy(max_attempts=1)) == 0


def test_lead_sees_the_failed_timer_start_and_retries_it_on_the_processes_page(app, client, db, runtime, tmp_path):
    _failed_timer_start(db, tmp_path)
    login(client, "lena.lead")
    page = client.get("/processes").get_data(as_text=True)
    assert "Timer starts in incident: 1" in page and "RuntimeError: database hiccup" in page
    listing = client.get("/instances?status=incident").get_data(as_text=True)
    assert "Timer starts in incident: 1" in listing and "weekly_review" in listing
    assert "Timer starts in incident" not in client.get("/instances?status=completed").get_data(as_text=True)

    response = post(client, "/processes/weekly_review/schedule/retry", page="/processes", follow_redirects=True)
    assert response.status_code == 200 and "re-armed" in response.get_data(as_text=True)
    assert "Timer starts in incident" not in client.get("/processes").get_data(as_text=True)
    with time_machine.travel(DUE + timedelta(minutes=1), tick=False):
        assert start_due(runtime, "w1") == 1  # the real runtime starts it on the next pass
    assert len(runtime.instances(key="weekly_review")) == 1
    assert post(client, "/processes/weekly_review/schedule/retry", page="/processes").status_code == 409


def test_api_lists_and_retries_timer_starts_for_leads_only(app, client, db, tmp_path):
    _failed_timer_start(db, tmp_path)
    lead, employee = token(client, "lena.lead"), token(client, "rita.reviewer")
    assert client.get("/api/v1/schedules", headers=employee).status_code == 403
    assert client.post("/api/v1/schedules/weekly_review/retry", headers=employee).status_code == 403
    [failed] = client.get("/api/v1/schedules?state=incident", headers=lead).get_json()
    assert failed["key"] == "weekly_review" and failed["state"] == "incident" and failed["attempts"] == 1
    assert failed["next_at"] == DUE.isoformat() and "database hiccup" in failed["last_error"]
    assert client.get("/api/v1/schedules?state=nope", headers=lead).status_code == 422
    assert client.post("/api/v1/schedules/nope/retry", headers=lead).status_code == 404
    response = client.post("/api/v1/schedules/weekly_review/retry", headers=lead)
    assert response.status_code == 200 and response.get_json()["state"] == "scheduled"
    assert client.get("/api/v1/schedules?state=incident", headers=lead).get_json() == []
    assert client.post("/api/v1/schedules/weekly_review/retry", headers=lead).status_code == 409
    assert "/schedules/{key}/retry" in client.get("/api/v1/openapi.json").get_json()["paths"]
