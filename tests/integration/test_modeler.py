"""The web modeler's server side (issue 13): drafts per user, Validate with the deploy checks (every
error and warning with its line and element to mark, nothing stored), Deploy as the next version;
only quality leads and admins."""

from __future__ import annotations

from tests.conftest import FIXTURES
from tests.integration.conftest import csrf, login

REVIEW = (FIXTURES / "simple_review.bpmn").read_text()


def _json(client, path, body, page="/processes/simple_review/edit"):
    return client.post(path, json=body, headers={"X-CSRFToken": csrf(client, page)})


def test_validate_reports_problems_with_elements_and_stores_nothing(client, runtime):
    login(client, "lena.lead")
    broken = REVIEW.replace('id="Task_Assess"', 'id="Task_Assess" camunda:followUpDate="${not valid ("', 1)
    assert broken != REVIEW
    response = _json(client, "/modeler/validate", {"xml": broken})
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is False
    [error] = [p for p in body["problems"] if p["severity"] == "error"]
    assert error["element_id"] == "Task_Assess" and error["line"] and "followUpDate" in error["message"]
    assert [d["version"] for d in runtime.definitions_list(all_versions=True) if d["key"] == "simple_review"] == [1]
    fine = _json(client, "/modeler/validate", {"xml": REVIEW}).get_json()
    assert fine["ok"] is True and all(p["severity"] == "warning" for p in fine["problems"])
    assert fine["compare"] is None  # no key sent: nothing to compare with
    renamed = REVIEW.replace('name="Assess request"', 'name="Assess it"', 1)
    compared = _json(client, "/modeler/validate", {"xml": renamed, "key": "simple_review"}).get_json()["compare"]
    assert compared == {"version": 1, "added": [], "removed": [], "changed": ["Task_Assess"]}


def test_deploy_makes_the_next_version_and_refuses_a_broken_model(client, runtime):
    login(client, "lena.lead")
    refused = _json(client, "/modeler/deploy", {"xml": REVIEW.replace('id="Task_Assess"',
                                                                      'id="Task_Assess" camunda:followUpDate="${("', 1),
                                                "key": "simple_review"})
    assert refused.status_code == 422 and refused.get_json()["problems"][0]["element_id"] == "Task_Assess"
    changed = REVIEW.replace('name="Assess request"', 'name="Assess the request"', 1)
    assert changed != REVIEW
    deployed = _json(client, "/modeler/deploy", {"xml": changed, "key": "simple_review"})
    assert deployed.status_code == 201, deployed.get_json()
    assert deployed.get_json()["results"][0] == {"key": "simple_review", "version": 2, "unchanged": False, "kind": "bpmn",
                                                 "url": "/processes/simple_review?version=2"}
    assert "Assess the request" in runtime.definition_xml("simple_review", 2)


def test_drafts_are_per_user_and_reopen_in_the_modeler(client, runtime):
    login(client, "lena.lead")
    draft = REVIEW.replace('name="Assess request"', 'name="Draft name"', 1)
    assert _json(client, "/processes/simple_review/draft", {"xml": draft, "base_version": 1}).status_code == 200
    page = client.get("/processes/simple_review/edit").get_data(as_text=True)
    assert "your draft" in page and "Draft name" in page
    deployed = client.get("/processes/simple_review/edit?source=deployed").get_data(as_text=True)
    assert "Draft name" not in deployed and "you have a draft" in deployed
    client.post("/logout", data={"csrf_token": csrf(client, "/inbox")})
    login(client, "ada.admin")
    assert "Draft name" not in client.get("/processes/simple_review/edit").get_data(as_text=True)


def test_new_process_from_a_template(client):
    login(client, "lena.lead")
    assert 'id="new-process"' in client.get("/processes/new").get_data(as_text=True)
    page = client.get("/processes/new?key=my_review&name=My+review&template=review").get_data(as_text=True)
    assert "my_review" in page and "Task_Review" in page and "bpmn-modeler.production.min.js" in page
    assert client.get("/processes/new?key=1bad key").status_code == 400
    fresh = _json(client, "/modeler/validate", {"xml": _model(client, "my_review")}, page="/processes/new")
    assert fresh.get_json()["ok"] is True


def _model(client, key):
    import json
    import re
    page = client.get(f"/processes/new?key={key}&template=review").get_data(as_text=True)
    return json.loads(re.search(r'id="model-data">(.*?)</script>', page, re.S)[1])["xml"]


def test_only_leads_and_admins_model(client):
    login(client, "rita.reviewer")
    assert client.get("/processes/simple_review/edit").status_code == 403
    assert client.get("/processes/new").status_code == 403
    assert _json(client, "/modeler/validate", {"xml": REVIEW}, page="/inbox").status_code == 403
    assert _json(client, "/modeler/deploy", {"xml": REVIEW}, page="/inbox").status_code == 403


def test_decision_editor_page_and_its_evaluate_call(client, complaint_process):
    login(client, "lena.lead")
    page = client.get("/decisions/complaint_severity/edit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-variable="customer_impact"' in html and "dmn-modeler.production.min.js" in html
    assert "style-src 'self' 'unsafe-inline'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]
    assert client.get("/decisions/nope/edit").status_code == 404
    answer = _json(client, "/decisions/complaint_severity/evaluate",
                   {"variables": {"safety_issue": True, "repeat_customer": False, "customer_impact": "degraded",
                                  "affected_units": 1}}, page="/decisions/complaint_severity/edit")
    assert answer.status_code == 200 and answer.get_json() == {"result": [{"severity": "critical"}]}
