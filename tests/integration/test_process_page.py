"""The process definition page /processes/<key> (issue 13): diagram data with per-element counts,
the versions with who deployed them, and Start through the start event's form."""

from __future__ import annotations

import json
import re

from tests.integration.conftest import login, post


def _diagram(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="process-diagram-data">(.*?)</script>',
                                html, re.S)[1])


def test_process_page_counts_versions_and_start_form(client, runtime, complaint_process):
    login(client, "lena.lead")
    page = client.get(f"/processes/{complaint_process}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="f_customer_name"' in html and 'id="f_description"' in html  # the start event's form
    assert 'name="data"' not in html  # no JSON textarea
    assert _diagram(html)["counts"] == {}
    # a short description is refused by the start form's rule, naming the field; nothing starts
    form = {"customer_name": "Ann Example", "customer_email": "ann@example.com", "product": "Kettle K2",
            "description": "Broken", "version": "1"}
    refused = post(client, f"/processes/{complaint_process}/start", form, page=f"/processes/{complaint_process}")
    assert refused.status_code == 422
    assert 'data-field="description"' in refused.get_data(as_text=True)
    assert runtime.instances(key=complaint_process) == []
    form["description"] = "The lid does not close any more."
    started = post(client, f"/processes/{complaint_process}/start", form, page=f"/processes/{complaint_process}")
    assert started.status_code == 302 and "/instances/" in started.headers["Location"]
    [row] = runtime.instances(key=complaint_process)
    assert runtime.instance(row["id"]).data["description"] == "The lid does not close any more."
    # the counts: one token waits at the acknowledgement
    counts = _diagram(client.get(f"/processes/{complaint_process}").get_data(as_text=True))["counts"]
    assert counts == {"acknowledge": {"running": 1, "incidents": 0}}


def test_versions_list_who_deployed_and_employees_read_only(client, runtime):
    login(client, "lena.lead")
    html = client.get("/processes/simple_review").get_data(as_text=True)
    assert 'id="versions"' in html and "v1" in html and "simple_review_v1.bpmn" not in html
    assert "/processes/simple_review/v1.xml" in html and 'id="start-form"' in html
    assert client.get("/processes/simple_review?version=7").status_code == 404
    assert client.get("/processes/nope").status_code == 404



def test_employee_sees_the_diagram_but_no_start_form(client):
    login(client, "rita.reviewer")
    html = client.get("/processes/simple_review").get_data(as_text=True)
    assert "data-bpmn-viewer" in html and 'id="start-form"' not in html
    assert post(client, "/processes/simple_review/start", {"version": "1"},
                page="/processes/simple_review").status_code == 403


def test_api_instance_diagram(client, runtime):
    from tests.integration.conftest import start_review, token

    instance = start_review(runtime)
    lead = token(client, "lena.lead")
    body = client.get(f"/api/v1/instances/{instance.id}/diagram", headers=lead).get_json()
    assert body["elements"]["StartEvent_1"]["state"] == "completed"
    assert body["elements"]["Task_Assess"]["state"] == "active" and body["flows"] == ["Flow_1"]
    assert "simple_review" in body["xml"]
    assert client.get(f"/api/v1/instances/{instance.id}/diagram",
                      headers=token(client, "otto.outsider")).status_code == 404
    assert client.get(f"/api/v1/instances/{instance.id}/diagram").status_code == 401
