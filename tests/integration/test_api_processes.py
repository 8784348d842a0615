"""REST API: processes, instances, complaints, messages and the OpenAPI document."""

from __future__ import annotations

import io

from tests.conftest import FIXTURES
from tests.integration.conftest import token
from tests.integration.test_web_pages import BROKEN

MESSAGE_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:message id="Msg" name="customer_reply"/>
  <bpmn:process id="waits" isExecutable="true">
    <bpmn:startEvent id="s"/>
    <bpmn:intermediateCatchEvent id="c"><bpmn:messageEventDefinition messageRef="Msg"/></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="e"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="c"/>
    <bpmn:sequenceFlow id="f2" sourceRef="c" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>"""


def test_processes_list_and_permissions(client):
    rita, lena = token(client, "rita.reviewer"), token(client, "lena.lead")
    assert client.get("/api/v1/processes").status_code == 401
    rows = client.get("/api/v1/processes", headers=rita).get_json()
    assert [(r["key"], r["version"]) for r in rows] == [("simple_review", 1)] and rows[0]["deployed_at"]
    response = client.post("/api/v1/processes", headers=rita, data=BROKEN, content_type="application/xml")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert client.post("/api/v1/processes/simple_review/instances", headers=rita, json={}).status_code == 403
    assert client.post("/api/v1/processes", headers=lena).status_code == 400


def test_upload_multipart_xml_body_unchanged_and_422(client):
    lena = token(client, "lena.lead")
    same = (FIXTURES / "simple_review.bpmn").read_bytes()
    response = client.post("/api/v1/processes", headers=lena, data={"file": (io.BytesIO(same), "simple_review.bpmn")},
                           content_type="multipart/form-data")
    assert response.status_code == 200 and response.get_json() == [{"key": "simple_review", "version": 1,
                                                                     "unchanged": True, "warnings": []}]
    changed = same.replace(b"Assess request", b"Assess it")
    response = client.post("/api/v1/processes?name=simple_review.bpmn", headers=lena, data=changed,
                           content_type="application/xml")
    assert response.status_code == 201 and response.get_json()[0]["version"] == 2
    assert len(client.get("/api/v1/processes?all=1", headers=lena).get_json()) == 2
    response = client.post("/api/v1/processes?name=broken.bpmn", headers=lena, data=BROKEN, content_type="application/xml")
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert details and all({"line", "element", "message"} <= set(d) for d in details)


def test_start_and_get_instance(client):
    lena, rita = token(client, "lena.lead"), token(client, "rita.reviewer")
    response = client.post("/api/v1/processes/simple_review/instances", headers=lena,
                           json={"data": {"reference": "C-3"}, "business_key": "C-3"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["key"] == "simple_review" and body["version"] == 1 and body["status"] == "running"
    got = client.get(f"/api/v1/instances/{body['id']}", headers=rita).get_json()
    assert got["data"]["reference"] == "C-3" and got["tasks"][0]["name"] == "Assess request"
    assert got["audit"][0]["type"] == "start"
    assert client.post("/api/v1/processes/nope/instances", headers=lena, json={}).status_code == 404
    response = client.post("/api/v1/processes/simple_review/instances", headers=lena, json={"data": [1]})
    assert response.status_code == 422 and response.get_json()["error"]["details"][0]["field"] == "data"
    assert client.get("/api/v1/instances/nope", headers=rita).status_code == 404


def test_complaints_api(client, runtime, complaint_process):
    response = client.post("/api/v1/complaints", json={"customer_name": "Bo", "customer_email": "bo@example.com",
                                                       "product": "Lamp", "description": "Flickers when dimmed"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["reference"].startswith("C-") and runtime.instance(body["instance_id"]).business_key == body["reference"]
    second = client.post("/api/v1/complaints", json={"customer_name": "Bo", "customer_email": "bo@example.com",
                                                     "product": "Lamp", "description": "Flickers again"}).get_json()
    assert second["reference"] != body["reference"]
    response = client.post("/api/v1/complaints", json={"customer_name": "Bo", "customer_email": "bad"})
    assert response.status_code == 422
    assert {d["field"] for d in response.get_json()["error"]["details"]} == {"customer_email", "product", "description"}


def test_messages_api(client, runtime):
    lena, rita = token(client, "lena.lead"), token(client, "rita.reviewer")
    client.post("/api/v1/processes?name=waits.bpmn", headers=lena, data=MESSAGE_BPMN, content_type="application/xml")
    started = client.post("/api/v1/processes/waits/instances", headers=lena, json={"business_key": "C-8"}).get_json()
    assert client.post("/api/v1/messages", headers=rita, json={"name": "customer_reply"}).status_code == 403
    response = client.post("/api/v1/messages", headers=lena, json={"name": "nobody_waits"})
    assert response.status_code == 404
    assert client.post("/api/v1/messages", headers=lena, json={}).status_code == 422
    assert runtime.instance(started["id"]).status == "running"


def test_messages_api_delivers(client, runtime):
    lena = token(client, "lena.lead")
    client.post("/api/v1/processes?name=waits.bpmn", headers=lena, data=MESSAGE_BPMN, content_type="application/xml")
    started = client.post("/api/v1/processes/waits/instances", headers=lena, json={"business_key": "C-8"}).get_json()
    response = client.post("/api/v1/messages", headers=lena,
                           json={"name": "customer_reply", "correlation": "C-8", "data": {"ok": True}})
    assert response.status_code == 200 and response.get_json() == {"instance_ids": [started["id"]]}
    assert runtime.instance(started["id"]).status == "completed"


def test_openapi_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    for path in ("/auth/token", "/processes", "/processes/{key}/instances", "/instances/{id}", "/tasks",
                 "/tasks/{id}", "/tasks/{id}/claim", "/tasks/{id}/unclaim", "/tasks/{id}/complete",
                 "/complaints", "/messages"):
        assert path in doc["paths"], path
    assert "TaskSchema" in doc["components"]["schemas"] and "ErrorSchema" in doc["components"]["schemas"]
    assert "409" in doc["paths"]["/tasks/{id}/complete"]["post"]["responses"]


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
