"""Deploy fidelity: what Camunda 7 runs deploys and runs here; what cannot run is refused with the
reason; what is ignored at run time deploys with a warning naming it (models/dep_*.bpmn)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from engine import clock
from engine.accounts import save_user
from engine.notifications import notify_task_events
from tests.constructs.conftest import MODELS, PASSWORD
from tests.integration.conftest import login, post
from tests.integration.test_cli import ROOT


def line_of(model: str, text: str) -> int:
    """The 1-based line of the first line of a model file containing `text`."""
    lines = (MODELS / model).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def task_id(flow, instance_id: str, element: str) -> str:
    return flow.open_task(instance_id, element)["id"]


# ---------------------------------------------------------------- warnings: deploys, names what it ignores
def test_unassigned_task_and_data_store_deploy_with_warnings(flow):
    results = flow.deploy("dep_unassigned.bpmn", expect=201)
    assert [(r["key"], r["version"], r["unchanged"]) for r in results] == [("dep_unassigned", 1, False)]
    warnings = {w["element"]: w for w in results[0]["warnings"]}
    assert set(warnings) == {'userTask triage "Triage complaint"', 'dataStoreReference crm "CRM"'}
    assert all(w["file"] == "dep_unassigned.bpmn" for w in warnings.values())
    task_warning = warnings['userTask triage "Triage complaint"']
    assert task_warning["line"] == line_of("dep_unassigned.bpmn", '<bpmn:userTask id="triage"')
    assert "Unassigned queue" in task_warning["message"]
    store = warnings['dataStoreReference crm "CRM"']
    assert store["line"] == line_of("dep_unassigned.bpmn", 'id="crm"') and "ignored at run time" in store["message"]
    # the same file again: unchanged, the warnings still reported
    again = flow.deploy("dep_unassigned.bpmn", expect=200)
    assert again[0]["unchanged"] is True and len(again[0]["warnings"]) == 2


def test_cli_prints_warnings_and_exits_0(tmp_path):
    env = {"PDCAFLOW_INSTANCE_DIR": str(tmp_path / "instance"), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "web.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    assert cli("init-db").returncode == 0
    path = MODELS / "dep_unassigned.bpmn"
    result = cli("deploy", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "dep_unassigned v1"
    task_line = line_of("dep_unassigned.bpmn", '<bpmn:userTask id="triage"')
    store_line = line_of("dep_unassigned.bpmn", 'id="crm"')
    assert f'{path}:{task_line}: userTask triage "Triage complaint": warning: nobody is assigned' in result.stdout
    assert f'{path}:{store_line}: dataStoreReference crm "CRM": warning: data stores are ignored at run time' \
        in result.stdout
    assert len(lines) == 3

    bad = MODELS / "dep_refused.bpmn"
    refused = cli("deploy", str(bad))
    assert refused.returncode == 1
    out = refused.stdout
    groovy, java = line_of(bad.name, 'id="groovy"'), line_of(bad.name, 'id="java"')
    assert f'{bad}:{groovy}: scriptTask groovy "Compute in Groovy": script format "groovy" cannot run' in out
    assert f'{bad}:{java}: serviceTask java "Call the ERP": camunda:class="com.acme.erp.PostInvoice"' in out
    assert "dep_refused v" not in out


def test_unassigned_task_waits_in_the_leads_queue_until_assigned(flow, db):
    flow.deploy("dep_unassigned.bpmn")
    instance = flow.start("dep_unassigned")
    rita = flow.token("rita.reviewer")
    triage = task_id(flow, instance["id"], "triage")
    # nobody is offered it: not in an employee's lists, not even by id
    assert flow.call("GET", "/api/v1/tasks", 200, headers=rita) == []
    assert flow.call("GET", "/api/v1/tasks?unassigned=1", 200, headers=rita) == []
    flow.call("GET", f"/api/v1/tasks/{triage}", 404, headers=rita)
    # the quality leads are told it waits for them
    notify_task_events(db)
    told = flow.call("GET", "/api/v1/notifications", 200)
    assert [(n["kind"], n["subject"]) for n in told["items"]] == [("unassigned_task", "Unassigned task: Triage complaint")]
    assert flow.call("GET", "/api/v1/notifications", 200, headers=rita)["items"] == []
    # the quality lead's Unassigned queue holds it, and only it
    queue = flow.call("GET", "/api/v1/tasks?unassigned=1", 200)
    assert [(t["id"], t["unassigned"], t["groups"], t["assignee"]) for t in queue] == [(triage, True, [], None)]
    # the lead assigns it with the ordinary assign operation; then it leaves the queue
    assigned = flow.call("POST", f"/api/v1/tasks/{triage}/assign", 200, json={"assignee": "rita.reviewer"})
    assert assigned["assignee"] == "rita.reviewer" and assigned["unassigned"] is False
    assert flow.call("GET", "/api/v1/tasks?unassigned=1", 200) == []
    assert [t["id"] for t in flow.call("GET", "/api/v1/tasks?mine=1", 200, headers=rita)] == [triage]
    flow.call("POST", f"/api/v1/tasks/{triage}/complete", 200, headers=rita, json={"data": {}})
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["path"] == ["triage", "record"]


def test_unassigned_tab_in_the_leads_inbox(flow):
    flow.deploy("dep_unassigned.bpmn")
    flow.start("dep_unassigned")
    login(flow.client, "lena.lead")
    html = flow.client.get("/inbox?tab=unassigned").get_data(as_text=True)
    assert "Unassigned" in html and "Triage complaint" in html and "unassigned</span>" in html


# ---------------------------------------------------------------- candidate users
def test_candidate_users_see_claim_and_complete(flow, db):
    save_user(db, "otto.other", "employee", password=PASSWORD, email="otto@example.com", groups=["others"])
    save_user(db, "emil.else", "employee", password=PASSWORD, email="emil@example.com", groups=["reviewers"])
    flow.deploy("dep_candidate_users.bpmn", expect=201)
    instance = flow.start("dep_candidate_users")
    approve = task_id(flow, instance["id"], "approve")
    rita, otto, emil = flow.token("rita.reviewer"), flow.token("otto.other"), flow.token("emil.else")
    for who in (rita, otto):
        listed = flow.call("GET", "/api/v1/tasks", 200, headers=who)
        assert [(t["id"], t["candidate_users"]) for t in listed] == [(approve, ["otto.other", "rita.reviewer"])]
    # emil is in no candidate list (a reviewer, but the task names people, not groups)
    assert flow.call("GET", "/api/v1/tasks", 200, headers=emil) == []
    flow.call("GET", f"/api/v1/tasks/{approve}", 404, headers=emil)
    # acting on a task one may not see is 404 (a 403 naming it would tell that it exists)
    refused = flow.call("POST", f"/api/v1/tasks/{approve}/complete", 404, headers=emil, json={"data": {}})
    assert "Approve request" not in refused["error"]["message"]
    assert flow.call("GET", "/api/v1/tasks?unassigned=1", 200) == []  # offered to people: not unassigned
    notify_task_events(db)
    for who in (rita, otto):
        told = flow.call("GET", "/api/v1/notifications", 200, headers=who)["items"]
        assert [n["kind"] for n in told] == ["task_offered"]
    assert flow.call("GET", "/api/v1/notifications", 200, headers=emil)["items"] == []
    flow.call("POST", f"/api/v1/tasks/{approve}/claim", 200, headers=otto)
    flow.call("POST", f"/api/v1/tasks/{approve}/complete", 409, headers=rita, json={"data": {}})
    flow.call("POST", f"/api/v1/tasks/{approve}/unclaim", 200, headers=otto)  # back to its candidates
    flow.call("POST", f"/api/v1/tasks/{approve}/claim", 200, headers=rita)
    flow.call("POST", f"/api/v1/tasks/{approve}/complete", 200, headers=rita, json={"data": {}})
    assert flow.status(instance["id"]) == "completed"


# ---------------------------------------------------------------- Operaton
def test_operaton_namespace_model_runs_as_its_camunda_twin(flow):
    results = flow.deploy("dep_operaton.bpmn", expect=201)
    assert results[0]["key"] == "dep_operaton" and results[0]["warnings"] == []
    accepted, rejected = flow.start("dep_operaton"), flow.start("dep_operaton")
    rita = flow.token("rita.reviewer")
    check = flow.call("GET", f"/api/v1/tasks/{task_id(flow, accepted['id'], 'check')}", 200, headers=rita)
    assert check["groups"] == ["reviewers"]  # operaton:candidateGroups
    assert [(f["id"], f["type"]) for f in check["form"]["fields"]] == [("ok", "boolean")]  # operaton:formData
    flow.call("POST", f"/api/v1/tasks/{check['id']}/complete", 200, headers=rita, json={"data": {"ok": True}})
    flow.call("POST", f"/api/v1/tasks/{task_id(flow, rejected['id'], 'check')}/complete", 200, headers=rita,
              json={"data": {"ok": False}})
    assert flow.status(accepted["id"]) == flow.status(rejected["id"]) == "completed"
    assert flow.variables(accepted["id"])["outcome"] == "accepted"
    assert flow.variables(rejected["id"])["outcome"] == "rejected"
    # what is stored and downloaded is the user's file, operaton namespace and all
    xml = flow.runtime.definition_xml("dep_operaton", 1)
    assert 'operaton:candidateGroups="reviewers"' in xml and "camunda" not in xml


# ---------------------------------------------------------------- cron timeCycle
def _to_next_ten_minutes() -> None:
    """Move the clock to one minute past the next full ten minutes, so the cron's slots are known."""
    now = clock.now()
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=10 - now.minute % 10)
    clock.advance(boundary + timedelta(minutes=1) - now)


def test_cron_cycle_on_a_non_interrupting_boundary_timer_fires_every_time(flow):
    flow.deploy("dep_cron_boundary.bpmn", expect=201)
    _to_next_ten_minutes()
    instance = flow.start("dep_cron_boundary")
    assert flow.advance(minutes=5) == 0  # 6 past: the next slot (10 past) is not due
    fired = 0
    for _ in range(3):
        fired += flow.advance(minutes=10)
    assert fired == 3
    reminders = [t for t in flow.open_tasks(instance["id"]) if t["spec_id"] == "remind"]
    assert len(reminders) == 3
    assert "work" in {t["spec_id"] for t in flow.open_tasks(instance["id"])}  # not interrupted
    flow.complete(instance["id"], "work")
    assert flow.advance(minutes=30) == 0  # the boundary timer ended with its activity
    for _ in range(3):
        flow.complete(instance["id"], "remind")
    assert flow.status(instance["id"]) == "completed"


def test_cron_cycle_on_an_intermediate_timer_waits_for_the_next_slot_and_passes_once(flow):
    flow.deploy("dep_cron_wait.bpmn", expect=201)
    _to_next_ten_minutes()
    instance = flow.start("dep_cron_wait")
    assert flow.advance(minutes=5) == 0 and flow.open_tasks(instance["id"]) == []
    assert flow.advance(minutes=10) == 1  # 16 past: the 10-past slot came
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["collect"]
    assert flow.advance(minutes=30) == 0  # the token went on: no second path at 20, 30, 40 past
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["collect"]
    flow.complete(instance["id"], "collect")
    assert flow.status(instance["id"]) == "completed"


def test_cron_cycle_on_an_interrupting_boundary_timer_fires_once_and_ends_the_activity(flow):
    flow.deploy("dep_cron_interrupt.bpmn", expect=201)
    _to_next_ten_minutes()
    now = clock.now()
    instance = flow.start("dep_cron_interrupt")
    minutes_to_hour = 60 - now.minute
    assert flow.advance(minutes=minutes_to_hour - 2) == 0  # two minutes before the full hour
    assert flow.advance(minutes=3) == 1
    assert flow.task_states(instance["id"]) == {"work": "cancelled", "handover": "open"}
    assert flow.advance(hours=3) == 0  # once: no second hand-over at the following hours
    assert [t["spec_id"] for t in flow.open_tasks(instance["id"])] == ["handover"]
    flow.complete(instance["id"], "handover")
    assert flow.status(instance["id"]) == "completed"


def test_cron_timer_start_event_starts_on_weekdays_at_nine(flow, runtime):
    from engine import schedules

    flow.deploy("dep_cron_start.bpmn", expect=201)
    assert schedules.sync_schedules(runtime.db) == 1
    (schedule,) = schedules.list_schedules(runtime.db)
    assert schedule.expression == "timeCycle:0 0 9 ? * MON-FRI" and schedule.remaining == -1
    first = schedule.next_at
    assert (first.hour, first.minute, first.weekday() < 5) == (9, 0, True)
    clock.advance(first - clock.now() + timedelta(seconds=1))
    assert schedules.start_due(runtime, "construct-suite") == 1
    (schedule,) = schedules.list_schedules(runtime.db)
    following = schedule.next_at
    assert following > first and (following.hour, following.minute, following.weekday() < 5) == (9, 0, True)
    assert following - first in (timedelta(days=1), timedelta(days=3))  # the next weekday


# ---------------------------------------------------------------- link events
def test_link_throw_continues_at_its_catch(flow):
    results = flow.deploy("dep_link.bpmn", expect=201)
    assert results[0]["warnings"] == []
    instance = flow.start("dep_link")
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["path"] == ["a", "b"]
    # the stored file is the user's: the link events are still there
    xml = flow.runtime.definition_xml("dep_link", 1)
    assert "linkEventDefinition" in xml and "go_to_b_link_from_a" not in xml


# ---------------------------------------------------------------- formKey without formData
def test_form_key_task_accepts_the_variables_the_client_submits(flow):
    flow.deploy("dep_form_key.bpmn", expect=201)
    instance = flow.start("dep_form_key")
    rita = flow.token("rita.reviewer")
    review = task_id(flow, instance["id"], "review")
    bad = flow.call("POST", f"/api/v1/tasks/{review}/complete", 422, headers=rita,
                    json={"data": {"approved": True, "__class__": 1}})
    assert [d["field"] for d in bad["error"]["details"]] == ["__class__"]
    flow.call("POST", f"/api/v1/tasks/{review}/complete", 200, headers=rita,
              json={"data": {"approved": True, "reviewer": "Rita", "notes": {"lot": 7, "checked": ["a", "b"]}}})
    data = flow.variables(instance["id"])
    assert flow.status(instance["id"]) == "completed"
    assert data["outcome"] == "accepted by Rita" and data["notes"] == {"lot": 7, "checked": ["a", "b"]}


def test_form_key_task_page_takes_the_variables_as_json(flow):
    flow.deploy("dep_form_key.bpmn", expect=201)
    instance = flow.start("dep_form_key")
    review = task_id(flow, instance["id"], "review")
    login(flow.client, "rita.reviewer")
    page = flow.client.get(f"/tasks/{review}").get_data(as_text=True)
    assert '<textarea id="f_*" name="*"' in page and "Variables (JSON object)" in page
    response = post(flow.client, f"/tasks/{review}/complete", {"*": "[1, 2]"}, page=f"/tasks/{review}")
    assert response.status_code == 422 and "must be a JSON object" in response.get_data(as_text=True)
    response = post(flow.client, f"/tasks/{review}/complete", {"*": '{"approved": false, "why": "smudged"}'},
                    page=f"/tasks/{review}")
    assert response.status_code == 302
    assert flow.status(instance["id"]) == "completed"
    assert flow.variables(instance["id"])["outcome"] == "rejected"
    assert flow.variables(instance["id"])["why"] == "smudged"


# ---------------------------------------------------------------- errors: refused with line and reason
def test_groovy_java_and_a_bad_cron_are_refused_with_line_and_reason(flow):
    body = flow.deploy("dep_refused.bpmn", expect=422)
    details = {d["element"]: d for d in body["error"]["details"]}
    groovy = details['scriptTask groovy "Compute in Groovy"']
    assert groovy["line"] == line_of("dep_refused.bpmn", 'id="groovy"')
    assert 'script format "groovy" cannot run' in groovy["message"] and "Python" in groovy["message"]
    java = details['serviceTask java "Call the ERP"']
    assert java["line"] == line_of("dep_refused.bpmn", 'id="java"')
    assert "Java class" in java["message"] and 'camunda:type="external" camunda:topic=' in java["message"]
    cron = details['intermediateCatchEvent wait "Wait"']
    assert cron["line"] == line_of("dep_refused.bpmn", "<bpmn:timeCycle")
    assert cron["message"].startswith("timeCycle: hours: '25'")
    assert len(details) == 3
    assert flow.call("GET", "/api/v1/processes", 200) == []


def test_a_condition_on_a_flow_leaving_a_task_deploys_and_runs_as_in_camunda(flow):
    # Once refused ("put a gateway after it"); Camunda 7 takes the flows whose conditions hold
    # (tests/constructs/test_conditional_flows.py). A flow not taken leaves the parallel join waiting.
    assert flow.deploy("flow_conditional_from_task.bpmn")[0]["key"] == "flow_conditional_from_task"
    taken = flow.start("flow_conditional_from_task", {"urgent": True})["id"]
    skipped = flow.start("flow_conditional_from_task", {"urgent": False})["id"]
    for iid in (taken, skipped):
        flow.complete(iid, "review")
        flow.complete(iid, "archive")
    assert flow.status(taken) == "completed" and flow.variables(taken)["notified"] is True
    assert flow.status(skipped) == "running" and "notified" not in flow.variables(skipped)
    assert flow.runtime.element_states(skipped)["elements"]["join"]["state"] == "active"


def test_a_default_flow_that_does_not_leave_the_activity_is_refused(flow):
    from tests.constructs.conftest import MODELS
    text = (MODELS / "flow_conditional_task.bpmn").read_text().replace('default="f_routine"', 'default="f1"')
    body = flow.call("POST", "/api/v1/processes?name=bad_default.bpmn", 422, data=text.encode(),
                     content_type="application/xml")
    [detail] = body["error"]["details"]
    assert detail["element"].startswith("userTask review") and "default flow 'f1'" in detail["message"]


def test_activiti_namespace_bound_to_camunda_prefix_is_read_as_camunda(flow):
    # Camunda 7's own older examples bind the `camunda:` prefix to Activiti's namespace; Camunda reads it.
    from tests.constructs.conftest import MODELS
    text = (MODELS / "dep_operaton.bpmn").read_text()
    text = text.replace('xmlns:operaton="http://operaton.org/schema/1.0/bpmn"', 'xmlns:camunda="http://activiti.org/bpmn"')
    text = text.replace("operaton:", "camunda:").replace('id="dep_operaton"', 'id="dep_activiti"')
    flow.call("POST", "/api/v1/processes?name=activiti.bpmn", 201, data=text.encode(), content_type="application/xml")
    instance = flow.start("dep_activiti")
    rita = flow.token("rita.reviewer")
    check = flow.call("GET", f"/api/v1/tasks/{task_id(flow, instance['id'], 'check')}", 200, headers=rita)
    assert check["groups"] == ["reviewers"]
    flow.call("POST", f"/api/v1/tasks/{check['id']}/complete", 200, headers=rita, json={"data": {"ok": True}})
    assert flow.variables(instance["id"])["outcome"] == "accepted"
