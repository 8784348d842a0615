"""The public complaint status (GET /api/v1/complaints/{reference}?email= and the page /status):
found only when reference and e-mail address match, the same 404 for an unknown reference and a
wrong address, a customer-readable stage from the model (never internal names), a rate limit per
client address shared by page and API (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

from tests.integration.conftest import csrf
from tests.service.helpers_process_library import LEAD, SERVICE, Driver, ack, reply, triage

GOOD = {"customer_name": "Ann Example", "customer_email": "Ann@Example.com", "product": "Kettle K2",
        "description": "The lid does not close."}
INTERNAL = ("acknowledge", "triage", "complaint_to_improvement", "customer_service", "rca_", "quality_lead",
            "improve", "Acknowledge the customer")


def _file(client) -> str:
    response = client.post("/api/v1/complaints", json=GOOD)
    assert response.status_code == 201
    return response.get_json()["reference"]


def _status(client, reference: str, email: str):
    return client.get(f"/api/v1/complaints/{reference}", query_string={"email": email})


def _readable(stage: str) -> None:
    assert stage and not any(word in stage for word in INTERNAL), stage


def test_status_for_matching_reference_and_email(client, runtime, complaint_process):
    reference = _file(client)
    response = _status(client, reference, "  ann@example.COM ")  # case and spaces do not matter
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"reference", "status", "stage", "received_at", "updated_at"}
    assert body["reference"] == reference and body["status"] == "received"
    assert "contact you personally within one working day" in body["stage"]
    _readable(body["stage"])
    assert body["received_at"] <= body["updated_at"]

    # the case moves on: the stage follows the open step, told in the customer's words
    instance_id = runtime.instances(key=complaint_process)[0]["id"]
    d = Driver(runtime, runtime.instance(instance_id))
    d.complete("acknowledge", SERVICE, ack())
    body = _status(client, reference, GOOD["customer_email"]).get_json()
    assert body["status"] == "in_progress" and body["stage"] == "We are assessing your complaint."
    d.complete("triage", LEAD, triage(True, False, False, "cosmetic", 1, "delivery", ""))
    d.complete("reply", SERVICE, reply())
    body = _status(client, reference, GOOD["customer_email"]).get_json()
    # inside the called root-cause process: the call activity's stage
    assert body["stage"].startswith("We are finding the cause of the problem")
    _readable(body["stage"])

    runtime.cancel(instance_id, LEAD, "duplicate of another complaint")
    body = _status(client, reference, GOOD["customer_email"]).get_json()
    assert body["status"] == "closed" and body["stage"] == "Your complaint is closed."


def test_mismatch_and_unknown_reference_answer_the_same_404(client, complaint_process):
    reference = _file(client)
    wrong_address = _status(client, reference, "someone.else@example.com")
    unknown = _status(client, "C-2099-999999", GOOD["customer_email"])
    assert wrong_address.status_code == unknown.status_code == 404
    assert wrong_address.get_json() == unknown.get_json()  # no oracle: nothing tells the two apart
    assert reference not in wrong_address.get_data(as_text=True)
    missing = client.get(f"/api/v1/complaints/{reference}")
    assert missing.status_code == 422
    assert missing.get_json()["error"]["details"] == [{"field": "email", "message": "is required"}]


def test_status_lookups_are_rate_limited_per_address(app, client, complaint_process):
    reference = _file(client)
    limits = app.extensions["pdcaflow.limits"]
    limits["status"] = replace(limits["status"], attempts=3)
    assert _status(client, reference, GOOD["customer_email"]).status_code == 200
    assert _status(client, reference, "guess@example.com").status_code == 404
    # the page and the API share the limit
    page = client.post("/status", data={"reference": reference, "email": GOOD["customer_email"],
                                        "csrf_token": csrf(client, "/status")})
    assert page.status_code == 200
    limited = _status(client, reference, GOOD["customer_email"])
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    assert 590 <= int(limited.headers["Retry-After"]) <= 600  # the window opened by the first look-up
    page = client.post("/status", data={"reference": reference, "email": GOOD["customer_email"],
                                        "csrf_token": csrf(client, "/status")})
    assert page.status_code == 429 and "try again later" in page.get_data(as_text=True)
    assert 590 <= int(page.headers["Retry-After"]) <= 600
    # another client address is not affected
    other = client.get(f"/api/v1/complaints/{reference}", query_string={"email": GOOD["customer_email"]},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_status_page_shows_the_same_answer(client, complaint_process):
    reference = _file(client)
    form = client.get(f"/status?reference={reference}").get_data(as_text=True)
    assert f'value="{reference}"' in form  # the link from the e-mail and the thank-you page fills it in
    token = csrf(client, "/status")
    found = client.post("/status", data={"reference": reference, "email": "ann@example.com", "csrf_token": token})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and 'id="status-result"' in html and "Received" in html
    assert "contact you personally within one working day" in html
    wrong = client.post("/status", data={"reference": reference, "email": "x@example.com", "csrf_token": token})
    unknown = client.post("/status", data={"reference": "C-2099-1", "email": "ann@example.com", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 404
    assert 'id="status-error"' in wrong.get_data(as_text=True) and 'id="status-result"' not in wrong.get_data(
        as_text=True)
    empty = client.post("/status", data={"reference": "", "email": "", "csrf_token": token})
    assert empty.status_code == 422 and "Reference number is required" in empty.get_data(as_text=True)
    assert client.post("/status", data={"reference": reference, "email": "ann@example.com"}).status_code == 400


def test_thank_you_page_links_the_status_page(client, complaint_process):
    response = client.post("/complain", data={**GOOD, "csrf_token": csrf(client, "/complain")})
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="status-link"' in html and "/status?reference=C-" in html
