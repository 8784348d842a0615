"""After a lead reassigns a corrective action and moves its due date, the action's task page shows
what to do (the action's record), the check page shows the earlier answers (success criteria), and
the ISO 9001 evidence report and the KPI facts name the real owner, the new due date and the
completion date — not the plan's."""

from __future__ import annotations

from datetime import timedelta

from engine import clock
from engine.kpis import build_query, nonconformity_report, refresh_facts
from tests.integration.conftest import login, token

ANALYSIS = {"problem_statement": "Lids crack on line 2", "why_1": "Mould worn", "root_cause": "Worn mould"}


def _open(instance_json: dict, name: str) -> list[dict]:
    return [t for t in instance_json["tasks"] if t["name"] == name and t["state"] in ("open", "claimed")]


def test_reassigned_action_reaches_the_task_page_and_the_iso_report(client, runtime, db, complaint_process):
    lead = token(client, "lena.lead")
    now = clock.now()
    started = client.post("/api/v1/processes/rca_and_corrective_action/instances", headers=lead,
                          json={"data": {"reference": "C-2026-000042", "received_at": now.isoformat(),
                                         "customer_name": "Ann Example"}})
    instance_id = started.get_json()["id"]
    state = client.get(f"/api/v1/instances/{instance_id}", headers=lead).get_json()
    analyse = _open(state, "Find the root cause")[0]
    state = client.post(f"/api/v1/tasks/{analyse['id']}/complete", headers=lead,
                        json={"data": ANALYSIS}).get_json()["instance"]
    plan = _open(state, "Plan the corrective actions")[0]
    planned_due = (now.date() + timedelta(days=7)).isoformat()
    state = client.post(f"/api/v1/tasks/{plan['id']}/complete", headers=lead, json={"data": {
        "success_criteria": "No cracked lid in 3 months", "action_1_what": "Replace the mould",
        "action_1_owner": "rob.reviewer", "action_1_due": planned_due}}).get_json()["instance"]
    [action] = _open(state, "Carry out the corrective action")
    assert action["assignee"] == "rob.reviewer"

    # the lead hands the action to Rita and moves its due date
    assert client.post(f"/api/v1/tasks/{action['id']}/assign", headers=lead,
                       json={"assignee": "rita.reviewer"}).status_code == 200
    new_due = now.date() + timedelta(days=20)
    assert client.post(f"/api/v1/tasks/{action['id']}/due", headers=lead,
                       json={"due_at": f"{new_due.isoformat()}T12:00:00+00:00"}).status_code == 200

    # Rita's task page says what the action is, from the action's own record
    login(client, "rita.reviewer")
    html = client.get(f"/tasks/{action['id']}").get_data(as_text=True)
    assert 'class="card about"' in html and "Replace the mould" in html
    assert "Earlier answers" in html and "No cracked lid in 3 months" in html
    rita = token(client, "rita.reviewer")
    done = client.post(f"/api/v1/tasks/{action['id']}/complete", headers=rita,
                       json={"data": {"action.done_at": now.date().isoformat(),
                                      "action.result": "New mould installed, see 8D report"}})
    assert done.status_code == 200, done.get_json()

    refresh_facts(db, full=True)
    query = build_query({"from": (now.date() - timedelta(days=1)).isoformat(),
                         "to": (now.date() + timedelta(days=1)).isoformat()})
    [item] = [i for i in nonconformity_report(db, query)["items"] if i["reference"] == "C-2026-000042"]
    [fact] = item["actions"]
    [moved] = [e for e in item["audit"] if e["type"] == "assign"]
    assert (moved["from"], moved["to"]) == ("rob.reviewer", "rita.reviewer")
    [due_changed] = [e for e in item["audit"] if e["type"] == "due_changed"]
    assert due_changed["to"].startswith(new_due.isoformat())
    assert (fact["what"], fact["owner"], fact["due_on"], fact["done_on"]) == (
        "Replace the mould", "rita.reviewer", new_due, now.date())

    client.get("/logout")
    login(client, "lena.lead")
    report = client.get(f"/reports/iso9001?from={query.from_date}&to={query.to_date}").get_data(as_text=True)
    # the case now waits for its effectiveness check: the case page says so, with the due time
    ahead = client.get(f"/instances/{instance_id}").get_data(as_text=True).split('id="ahead"', 1)[1]
    ahead = ahead.split('id="timeline"', 1)[0]
    assert "waiting for timer" in ahead and " · due " in ahead
    heading = report.split("<h3>C-2026-000042", 1)[1].split("</h3>", 1)[0]
    assert heading == " · complaint · In progress", heading  # not the process variable's word
    row = next(r for r in report.split("<tr>") if "Replace the mould" in r).split("</tr>", 1)[0]
    assert "rita.reviewer" in row and new_due.isoformat() in row and "rob.reviewer" not in row
    assert planned_due not in row
    # dates stay whole in their narrow columns ("2026-12-" / "28" was one date on two lines)
    assert f'<td class="date">{new_due.isoformat()}</td>' in row and f'<td class="date">{now.date().isoformat()}</td>' in row
    # the audit trail is evidence: it names the new owner and the new due date, not just "assign"
    trail = report.split("Audit trail", 1)[1]
    assert "from rob.reviewer to rita.reviewer" in trail and f"→ {new_due.isoformat()} " in trail


def test_the_report_names_people_as_the_case_timeline_does(client, runtime, db, complaint_process):
    """An instance the public intake started reads "by the customer" in the report's audit trail, as on
    the case page, never by the technical account name."""
    from engine.intake import PUBLIC

    now = clock.now()
    instance = runtime.start("rca_and_corrective_action", {"reference": "C-2026-000043", "received_at": now.isoformat(),
                                                           "customer_name": "Ann Example"}, PUBLIC)
    refresh_facts(db, full=True)
    login(client, "lena.lead")
    day = now.date()
    report = client.get(f"/reports/iso9001?from={day - timedelta(days=1)}&to={day + timedelta(days=1)}")
    article = report.get_data(as_text=True).split("C-2026-000043", 1)[1].split("</article>", 1)[0]
    assert "<strong>start</strong> by the customer" in article and "by public" not in article
    page = client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert "<strong>the customer</strong> started the case" in page and "by the customer" in page
