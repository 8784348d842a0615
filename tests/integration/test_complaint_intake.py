"""Complaint intake has one rule set, the complaint process's start form: the public page, the API
and a direct `Runtime.start` refuse the same complaint with the same field messages, and staff
starts of any process are held to its start form."""

from __future__ import annotations

import html
import re

import pytest

from engine.errors import FormValidationError
from engine.intake import start_form
from engine.views import Actor
from tests.integration.conftest import csrf, login, post, token

GOOD = {"customer_name": "Ann Example", "customer_email": "ann@example.com", "product": "Kettle K2",
        "description": "The lid does not close."}
LONG_EMAIL = "a" * 288 + "@example.com"  # 300 characters, well-formed otherwise
BAD = {
    "e-mail too long, description too short": (
        {**GOOD, "customer_email": LONG_EMAIL, "description": "Broken"},
        {"customer_email": "must be at most 254 characters", "description": "must be at least 10 characters"}),
    "empty description, no e-mail address": (
        {**GOOD, "customer_email": "not-an-address", "description": "   "},
        {"customer_email": "is not a valid e-mail address", "description": "is required"}),
}


def _page_errors(page: str) -> dict[str, str]:
    return {f: html.unescape(text) for f, text in re.findall(r'data-field="([^"]+)">([^<]*)</p>', page)}


@pytest.mark.parametrize("case", sorted(BAD))
def test_same_bad_complaint_is_refused_alike_by_page_api_and_runtime(client, runtime, complaint_process, case):
    complaint, expected = BAD[case]
    labels = {f["id"]: f["label"] for f in start_form(runtime, complaint_process)}

    page = client.post("/complain", data={**complaint, "csrf_token": csrf(client, "/complain")})
    assert page.status_code == 422
    assert _page_errors(page.get_data(as_text=True)) == {f: f"{labels[f]} {m}" for f, m in expected.items()}

    response = client.post("/api/v1/complaints", json=complaint)
    assert response.status_code == 422
    assert {d["field"]: d["message"] for d in response.get_json()["error"]["details"]} == expected

    with pytest.raises(FormValidationError) as exc_info:
        runtime.start(complaint_process, {**complaint, "reference": "C-1"}, Actor.system("staff"))
    assert {d["field"]: d["message"] for d in exc_info.value.details} == expected

    assert runtime.instances() == []


def test_api_complaint_takes_exactly_the_form_fields(client, runtime, complaint_process):
    response = client.post("/api/v1/complaints", json={**GOOD, "severity": "critical"})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [{"field": "severity", "message": "is not a field of this form"}]
    email = "b" * 242 + "@example.com"  # 254 characters: RFC 5321's limit
    response = client.post("/api/v1/complaints", json={**GOOD, "customer_email": email})
    assert response.status_code == 201
    assert runtime.instance(response.get_json()["instance_id"]).data["customer_email"] == email


def test_api_instance_start_with_an_invalid_start_form_value_is_422(client, runtime, complaint_process):
    lena = token(client, "lena.lead")
    url = f"/api/v1/processes/{complaint_process}/instances"
    response = client.post(url, headers=lena, json={"data": {**GOOD, "customer_email": "ann(at)example.com"}})
    assert response.status_code == 422
    body = response.get_json()["error"]
    assert body["code"] == "invalid_form" and "customer_email" in body["message"]
    assert body["details"] == [{"field": "customer_email", "message": "is not a valid e-mail address"}]
    assert runtime.instances() == []
    # valid form fields plus variables that are not form fields: started
    response = client.post(url, headers=lena, json={"data": {**GOOD, "effectiveness_wait": "PT2S"}})
    assert response.status_code == 201
    assert runtime.instance(response.get_json()["id"]).data["effectiveness_wait"] == "PT2S"


def test_staff_start_page_shows_the_start_form_errors(client, runtime, complaint_process):
    login(client, "lena.lead")
    data = '{"customer_name": "Ann", "customer_email": "ann@example.com", "product": "Kettle", "description": "Bad"}'
    response = post(client, f"/processes/{complaint_process}/start", {"data": data}, page="/processes")
    assert response.status_code == 422
    assert "description must be at least 10 characters" in response.get_data(as_text=True)
    assert runtime.instances() == []


def test_openapi_describes_the_complaint_start_form(client, complaint_process):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["ComplaintRequest"]
    assert schema["properties"]["customer_email"] == {"description": "Your e-mail address", "type": "string",
                                                      "maxLength": 254, "minLength": 1, "format": "email"}
    assert schema["properties"]["description"]["minLength"] == 10
    assert set(schema["required"]) == {"customer_name", "customer_email", "product", "description"}
    assert schema["additionalProperties"] is False


def test_complaints_unavailable_without_the_complaint_process(client, runtime):
    # the configured complaint process is not deployed: nothing to validate against, nothing filed
    assert client.get("/complain").status_code == 503
    assert client.post("/api/v1/complaints", json=GOOD).status_code == 503
