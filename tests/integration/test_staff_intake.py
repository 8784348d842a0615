"""Customer service registers complaints that came by phone, e-mail or a visit through the
complaint process's start form in the web UI, with the channel recorded; the public form records
`web`. Who may: members of `customer_service`, quality leads and admins (engine/permissions.py)."""

from __future__ import annotations

import html
import re

import pytest

from engine.accounts import save_user
from engine.errors import FormValidationError, PermissionDeniedError
from engine.intake import register_complaint, start_form
from engine.views import Actor
from tests.integration.conftest import PASSWORD, csrf, login

GOOD = {"customer_name": "Bea Caller", "customer_email": "bea@example.com", "product": "Toaster T-3",
        "description": "The casing gets very hot on the left side."}


def _carl(db) -> None:
    save_user(db, "carl.service", "employee", password=PASSWORD, email="carl@example.com",
              groups=["customer_service", "employee"])


def _errors(page: str) -> dict[str, str]:
    return {f: html.unescape(text) for f, text in re.findall(r'data-field="([^"]+)">([^<]*)</p>', page)}


def test_customer_service_registers_a_phone_complaint(client, db, runtime, complaint_process):
    _carl(db)
    login(client, "carl.service")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert 'href="/complaints/new"' in inbox  # offered in the navigation
    page = client.get("/complaints/new").get_data(as_text=True)
    assert 'name="channel"' in page and all(f'name="{f}"' in page for f in GOOD)
    assert "JSON" not in page  # a form, not a box of JSON

    response = client.post("/complaints/new", data={**GOOD, "channel": "phone",
                                                    "csrf_token": csrf(client, "/complaints/new")})
    assert response.status_code == 303
    [instance] = runtime.instances(key=complaint_process)
    view = runtime.instance(instance["id"])
    assert view.data["channel"] == "phone" and view.data["customer_name"] == "Bea Caller"
    assert re.fullmatch(r"C-\d{4}-\d{6}", view.business_key)
    start = next(a for a in view.audit if a.type == "start")
    assert start.actor == "carl.service"  # who took the call
    ack = next(t for t in view.tasks if t.spec_id == "acknowledge")
    assert response.headers["Location"].endswith(f"/tasks/{ack.id}")  # straight on to acknowledging it
    task_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Complaint {view.business_key} registered (Phone)" in task_page


def test_channel_and_fields_are_checked_and_nothing_is_filed(client, db, runtime, complaint_process):
    _carl(db)
    login(client, "carl.service")
    token = csrf(client, "/complaints/new")
    bad = client.post("/complaints/new", data={**GOOD, "channel": "web", "description": "short",
                                               "csrf_token": token})
    assert bad.status_code == 422
    errors = _errors(bad.get_data(as_text=True))
    assert errors["channel"] == "How did the complaint reach us? must be one of phone, email, visit"
    assert errors["description"].endswith("must be at least 10 characters")
    assert runtime.instances(key=complaint_process) == []
    assert client.post("/complaints/new", data={**GOOD, "channel": "email"}).status_code == 400  # no CSRF token


def test_others_may_not_register_complaints(client, db, runtime, complaint_process):
    login(client, "rita.reviewer")
    assert 'href="/complaints/new"' not in client.get("/inbox").get_data(as_text=True)
    assert client.get("/complaints/new").status_code == 403
    token = csrf(client, "/inbox")
    assert client.post("/complaints/new", data={**GOOD, "channel": "phone", "csrf_token": token}).status_code == 403
    assert runtime.instances(key=complaint_process) == []
    rita = Actor("rita.reviewer", frozenset({"reviewers"}), "employee")
    fields = start_form(runtime, complaint_process)
    with pytest.raises(PermissionDeniedError):
        register_complaint(runtime, complaint_process, fields, GOOD, "phone", rita)
    # leads may (they stand in for customer service)
    lena = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
    reference, view = register_complaint(runtime, complaint_process, fields, GOOD, "visit", lena)
    assert view.data["channel"] == "visit" and view.business_key == reference
    with pytest.raises(FormValidationError) as exc_info:
        register_complaint(runtime, complaint_process, fields, GOOD, "carrier pigeon", lena)
    assert exc_info.value.details == [{"field": "channel", "message": "must be one of phone, email, visit"}]


def test_public_form_records_the_web_channel(client, runtime, complaint_process):
    response = client.post("/complain", data={**GOOD, "csrf_token": csrf(client, "/complain")})
    assert response.status_code == 303
    [instance] = runtime.instances(key=complaint_process)
    assert runtime.instance(instance["id"]).data["channel"] == "web"
