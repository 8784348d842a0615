"""Processes, instances, public complaint form and admin pages (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

from tests.conftest import FIXTURES
from tests.integration.conftest import csrf, lead_actor, login, post, start_review

BROKEN = b"""<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="broken" isExecutable="true">
    <bpmn:startEvent id="s"/>
    <bpmn:scriptTask id="groovy" name="Groovy" scriptFormat="groovy"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="groovy"/>
  </bpmn:process>
</bpmn:definitions>"""
# Deploys, with a warning: nobody is assigned the task (it waits in the Unassigned queue).
UNASSIGNED = BROKEN.replace(b'id="broken"', b'id="unassigned"').replace(
    b'<bpmn:scriptTask id="groovy" name="Groovy" scriptFormat="groovy"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>',
    b'<bpmn:userTask id="nobody" name="Nobody"/>').replace(b'targetRef="groovy"', b'targetRef="nobody"')


def test_processes_page_lists_versions_and_downloads_xml(client):
    login(client, "lena.lead")
    page = client.get("/processes").get_data(as_text=True)
    assert "simple_review" in page and "v1" in page
    xml = client.get("/processes/simple_review/v1.xml")
    assert xml.status_code == 200 and xml.mimetype == "application/xml" and b"Task_Assess" in xml.data
    assert client.get("/processes/simple_review/v9.xml").status_code == 404


def test_processes_page_is_for_leads_only(client):
    login(client, "rita.reviewer")
    assert client.get("/processes").status_code == 403
    assert client.get("/processes/simple_review/v1.xml").status_code == 403


def test_upload_new_version_and_problems_line_by_line(client):
    login(client, "lena.lead")
    changed = (FIXTURES / "simple_review.bpmn").read_bytes().replace(b"Assess request", b"Assess the request")
    response = post(client, "/processes", {"file": (io.BytesIO(changed), "simple_review.bpmn")}, page="/processes",
                    content_type="multipart/form-data")
    assert response.status_code == 302
    assert "v2" in client.get("/processes").get_data(as_text=True)
    response = post(client, "/processes", {"file": (io.BytesIO(BROKEN), "broken.bpmn")}, page="/processes",
                    content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r"<code>broken\.bpmn:\d+</code>", html) and "groovy" in html
    response = post(client, "/processes", {"file": (io.BytesIO(UNASSIGNED), "unassigned.bpmn")}, page="/processes",
                    content_type="multipart/form-data")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "unassigned v1 deployed" in html
    assert re.search(r'class="flash warning"[^>]*>unassigned\.bpmn:5: userTask nobody &#34;Nobody&#34;: warning: '
                     r"nobody is assigned", html), html
    response = post(client, "/processes", {"file": (io.BytesIO(b"x"), "notes.txt")}, page="/processes",
                    content_type="multipart/form-data")
    assert response.status_code == 400


def test_upload_too_large_is_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    login(client, "lena.lead")
    response = post(client, "/processes", {"file": (io.BytesIO(b"<x/>" * 5000), "big.bpmn")}, page="/processes",
                    content_type="multipart/form-data")
    assert response.status_code == 413


def test_start_instance_and_instance_page(client, runtime):
    login(client, "lena.lead")
    response = post(client, "/processes/simple_review/start", {"business_key": "C-55", "data": '{"reference": "C-55"}'},
                    page="/processes")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "C-55" in page and "Assess request" in page and "Audit trail" in page
    assert "data-bpmn-viewer" in page and "Cancel instance" in page
    diagram = json.loads(re.search(r'<script type="application/json" id="instance-diagram-data">(.*?)</script>',
                                   page, re.S)[1])
    assert diagram["elements"]["Task_Assess"]["state"] == "active" and "Task_Assess" in diagram["xml"]
    assert diagram["elements"]["Task_Assess"]["tasks"][0]["name"] == "Assess request"
    assert post(client, "/processes/simple_review/start", {"data": "[1"}, page="/processes").status_code == 422
    assert post(client, "/processes/nope/start", {"data": "{}"}, page="/processes").status_code == 404


def test_instance_cancel_and_retry_buttons(client, runtime):
    instance = start_review(runtime)
    login(client, "lena.lead")
    assert post(client, f"/instances/{instance.id}/retry", page=f"/instances/{instance.id}").status_code == 409
    response = post(client, f"/instances/{instance.id}/cancel", {"reason": "duplicate"}, page=f"/instances/{instance.id}")
    assert response.status_code == 302
    assert runtime.instance(instance.id).status == "cancelled"
    assert "Cancel instance" not in client.get(f"/instances/{instance.id}").get_data(as_text=True)


def test_employee_cannot_cancel(client, runtime):
    instance = start_review(runtime)
    login(client, "rita.reviewer")
    page = client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert "Cancel instance" not in page and "Assess request" in page
    assert post(client, f"/instances/{instance.id}/cancel").status_code == 403
    assert client.get("/instances").status_code == 403
    assert client.get("/instances/unknown").status_code == 404


def test_instances_list(client, runtime):
    start_review(runtime, "C-77")
    login(client, "lena.lead")
    assert "C-77" in client.get("/instances?status=running").get_data(as_text=True)


def test_public_complaint_form(client, runtime, complaint_process):
    page = client.get("/complain")
    assert page.status_code == 200 and b"customer_email" in page.data
    token = csrf(client, "/complain")
    bad = client.post("/complain", data={"csrf_token": token, "customer_name": "Ann", "customer_email": "nope",
                                         "description": "broken"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'data-field="customer_email"' in html and 'data-field="product"' in html and 'value="Ann"' in html
    good = client.post("/complain", data={"csrf_token": token, "customer_name": "Ann Example",
                                          "customer_email": "ann@example.com", "product": "Kettle K2",
                                          "order_ref": "A-1", "description": "It leaks at the base.",
                                          "desired_outcome": "Refund"})
    assert good.status_code == 303 and good.headers["Location"].endswith("/complain/thanks")
    thanks = client.get("/complain/thanks")
    reference = re.search(r'id="reference">(C-\d{4}-\d{6})<', thanks.get_data(as_text=True)).group(1)
    rows = runtime.instances()
    assert [r["business_key"] for r in rows] == [reference]
    # reloading the confirmation shows the same reference and files nothing
    again = client.get("/complain/thanks").get_data(as_text=True)
    assert f'id="reference">{reference}<' in again
    assert [r["business_key"] for r in runtime.instances()] == [reference]
    # another browser (no session) is sent to the form, not shown someone's reference
    other = client.application.test_client().get("/complain/thanks")
    assert other.status_code == 302 and other.headers["Location"].endswith("/complain")
    data = runtime.instance(rows[0]["id"]).data
    assert data["reference"] == reference and data["customer_email"] == "ann@example.com"


def test_complaint_rate_limit(client, app, complaint_process):
    limits = app.extensions["pdcaflow.limits"]
    limits["complaint"] = replace(limits["complaint"], attempts=2)
    form = {"customer_name": "A", "customer_email": "a@example.com", "product": "P", "description": "Does not work."}
    responses = [client.post("/complain", data=dict(form, csrf_token=csrf(client, "/complain"))) for _ in range(3)]
    assert [r.status_code for r in responses] == [303, 303, 429]
    assert "Retry-After" not in responses[0].headers
    assert 590 <= int(responses[2].headers["Retry-After"]) <= 600
    assert "several complaints in a short time" in responses[2].get_data(as_text=True)


def test_admin_users_page(client):
    login(client, "ada.admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "rita.reviewer" in page and "reviewers" in page
    client.post("/logout", data={"csrf_token": csrf(client, "/inbox")})
    login(client, "lena.lead")
    assert client.get("/admin/users").status_code == 403


def test_lead_sees_all_tab(client, runtime):
    start_review(runtime)
    login(client, "lena.lead")
    assert "Assess request" in client.get("/inbox?tab=all").get_data(as_text=True)
    assert lead_actor().is_lead
