"""The action plan keeps its data sound: an owner must be an active user, a due date must not be in
the past (web form and API name the field, nothing is stored); assigning a task to a user who does
not exist is a 422 naming `assignee`; the audit trail records the new assignee and due date."""

from __future__ import annotations

from datetime import timedelta

from engine import clock
from tests.integration.conftest import lead_actor, login, post, token

ANALYSIS = {"problem_statement": "Lids crack on line 2", "why_1": "Mould worn", "root_cause": "Worn mould"}


def _plan_task(client, runtime, lead):
    started = client.post("/api/v1/processes/rca_and_corrective_action/instances", headers=lead,
                          json={"data": {"reference": "C-2026-000001"}})
    assert started.status_code == 201, started.get_json()
    instance_id = started.get_json()["id"]
    analyse = next(t for t in client.get(f"/api/v1/instances/{instance_id}", headers=lead).get_json()["tasks"]
                   if t["state"] in ("open", "claimed"))
    done = client.post(f"/api/v1/tasks/{analyse['id']}/complete", headers=lead, json={"data": ANALYSIS})
    assert done.status_code == 200, done.get_json()
    plan = next(t for t in done.get_json()["instance"]["tasks"] if t["state"] in ("open", "claimed"))
    assert plan["name"] == "Plan the corrective actions"
    return instance_id, plan["id"]


def test_plan_refuses_unknown_owner_and_past_date_then_accepts_real_ones(client, runtime, complaint_process):
    lead = token(client, "lena.lead")
    instance_id, plan_id = _plan_task(client, runtime, lead)
    today = clock.now().date()
    bad = {"success_criteria": "No repeat in 3 months", "action_1_what": "Replace the mould",
           "action_1_owner": "nobody.here", "action_1_due": "2020-01-01",
           "action_2_what": "Train staff", "action_2_owner": "rita.reviewer",
           "action_2_due": (today - timedelta(days=1)).isoformat()}
    response = client.post(f"/api/v1/tasks/{plan_id}/complete", headers=lead, json={"data": bad})
    assert response.status_code == 422
    details = {d["field"]: d["message"] for d in response.get_json()["error"]["details"]}
    assert details == {"action_1_owner": "names no active user (nobody.here)",
                       "action_1_due": "must not be in the past", "action_2_due": "must not be in the past"}
    state = client.get(f"/api/v1/instances/{instance_id}", headers=lead).get_json()
    assert "action_1_owner" not in state["data"] or state["data"]["action_1_owner"] in ("", None)

    # the web form names the same fields and keeps the page
    login(client, "lena.lead")
    page = post(client, f"/tasks/{plan_id}/complete", bad, page=f"/tasks/{plan_id}")
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'data-field="action_1_owner"' in html and 'data-field="action_1_due"' in html
    assert 'list="people"' in html and '<option value="rita.reviewer">' in html  # the user picker
    assert f'min="{today.isoformat()}"' in html

    good = dict(bad, action_1_owner="rob.reviewer", action_1_due=(today + timedelta(days=7)).isoformat(),
                action_2_due=today.isoformat())
    response = client.post(f"/api/v1/tasks/{plan_id}/complete", headers=lead, json={"data": good})
    assert response.status_code == 200, response.get_json()
    actions = [t for t in response.get_json()["instance"]["tasks"] if t["name"] == "Carry out the corrective action"]
    assert sorted(t["assignee"] for t in actions) == ["rita.reviewer", "rob.reviewer"]


def test_assign_to_unknown_user_is_422_and_audit_names_new_assignee_and_date(client, runtime):
    lead = token(client, "lena.lead")
    from tests.integration.conftest import start_review

    instance = start_review(runtime, "C-5")
    task_id = instance.tasks[0].id
    response = client.post(f"/api/v1/tasks/{task_id}/assign", headers=lead, json={"assignee": "ghost.user"})
    assert response.status_code == 422
    assert [d["field"] for d in response.get_json()["error"]["details"]] == ["assignee"]
    assert client.get(f"/api/v1/tasks/{task_id}", headers=lead).get_json()["assignee"] is None
    assert client.post(f"/api/v1/tasks/{task_id}/assign", headers=lead,
                       json={"assignee": "rob.reviewer"}).status_code == 200
    assert client.post(f"/api/v1/tasks/{task_id}/due", headers=lead,
                       json={"due_at": "2031-05-04T12:00:00+00:00"}).status_code == 200
    audit = client.get(f"/api/v1/instances/{instance.id}", headers=lead).get_json()["audit"]
    assign = next(e for e in audit if e["type"] == "assign")
    due = next(e for e in audit if e["type"] == "due_changed")
    assert assign["payload"]["to"] == "rob.reviewer"
    assert due["payload"]["to"].startswith("2031-05-04T12:00")
    # the web form says so too, and stores nothing
    login(client, "lena.lead")
    page = post(client, f"/tasks/{task_id}/assign", {"assignee": "ghost.user"}, page=f"/tasks/{task_id}",
                follow_redirects=True)
    assert "no active user named ghost.user" in page.get_data(as_text=True)
    assert client.get(f"/api/v1/tasks/{task_id}", headers=lead).get_json()["assignee"] == "rob.reviewer"
    history = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert "reassigned" in history and "to rob.reviewer" in history and "to 2031-05-04 12:00" in history


def test_a_computed_assignee_who_is_no_user_leaves_the_task_to_the_leads_who_are_told(client, runtime, db):
    """`camunda:assignee="${owner}"` naming nobody: the task waits in the Unassigned queue, the case's
    timeline says why, and the lead finds an "Assignee not available" notice on the notifications page."""
    from engine.notifications import notify_task_events
    from tests.conftest import FIXTURES

    runtime.deploy_paths([FIXTURES / "runtime" / "bad_assignee.bpmn"])
    instance = runtime.start("rt_bad_assignee", {"owner": "ghost.user"}, lead_actor())
    [task] = instance.tasks
    assert (task.assignee, task.state, task.groups) == (None, "open", [])
    notify_task_events(db)
    login(client, "lena.lead")
    unassigned = client.get("/inbox?tab=unassigned").get_data(as_text=True)
    assert f"/tasks/{task.id}" in unassigned
    page = client.get("/notifications").get_data(as_text=True)
    assert "Assignee not available" in page and "Assignee not available: Owner acts" in page
    timeline = client.get(f"/instances/{instance.id}").get_data(as_text=True).split('id="timeline"', 1)[1]
    assert "could not assign" in timeline and "to ghost.user, who has no account" in timeline
    assert "left for the quality leads to assign" in timeline
    # the API shows the same task as unassigned, and a lead gives it to a real person
    lead = token(client, "lena.lead")
    assert client.post(f"/api/v1/tasks/{task.id}/assign", headers=lead,
                       json={"assignee": "rob.reviewer"}).get_json()["assignee"] == "rob.reviewer"
