"""The case page (instance page) as a browser posts it: comment and attach through its forms, the
timeline with labelled values and reassignments, and the public /complain form taking photos."""

from __future__ import annotations

import io

from engine import case_notes
from engine.views import Actor
from tests.fixtures.sample_files import EXE, png
from tests.integration.conftest import csrf, lead_actor, login, post, start_review

COMPLAINT = {"customer_name": "Ann Example", "customer_email": "ann@example.com", "product": "Kettle K2",
             "description": "The lid broke off after two days of normal use."}


def test_comment_and_attach_on_the_case_page(client, runtime):
    instance = start_review(runtime)
    login(client, "rita.reviewer")
    page = f"/instances/{instance.id}"
    assert post(client, f"{page}/comments", {"body": "Customer sent photos."}, page=page).status_code == 302
    response = client.post(f"{page}/attachments", data={"csrf_token": csrf(client, page),
                                                        "file": (io.BytesIO(png()), "lid.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    html = client.get(page).get_data(as_text=True)
    assert "Customer sent photos." in html and "lid.png" in html and "rita.reviewer" in html
    bad = client.post(f"{page}/attachments", data={"csrf_token": csrf(client, page),
                                                   "file": (io.BytesIO(EXE), "lid.png")},
                      content_type="multipart/form-data", follow_redirects=True)
    assert "Not attached" in bad.get_data(as_text=True)
    assert [a.payload["filename"] for a in runtime.instance(instance.id).audit if a.type == "attach"] == ["lid.png"]
    # the outsider gets 404 on the page, the forms and the download
    client.get("/logout")
    login(client, "otto.outsider")
    assert client.get(page).status_code == 404
    assert post(client, f"{page}/comments", {"body": "x"}).status_code == 404


def test_timeline_shows_values_under_labels_and_the_new_assignee_and_date(client, runtime):
    instance = start_review(runtime)
    task = instance.tasks[0]
    runtime.assign(task.id, lead_actor(), "rob.reviewer")
    runtime.set_due_date(task.id, lead_actor(), "2031-05-06T10:00:00+00:00")
    rob = Actor("rob.reviewer", frozenset({"reviewers"}), "employee")
    runtime.complete(task.id, rob, {"amount": 250, "urgent": True, "note": "looks fine"})
    audit = {a.type: a.payload for a in runtime.instance(instance.id).audit}
    assert audit["assign"]["to"] == "rob.reviewer" and audit["due_changed"]["to"].startswith("2031-05-06T10:00")
    login(client, "lena.lead")
    html = client.get(f"/instances/{instance.id}").get_data(as_text=True)
    assert "reassigned" in html and "to rob.reviewer" in html and "to 2031-05-06 10:00" in html
    # the values entered, under the form's labels, as people read them
    for label, value in (("Amount", "250"), ("Urgent", "Yes"), ("Note", "looks fine")):
        assert f"<dt>{label}</dt><dd data-var=" in html and f">{value}</dd>" in html


def test_complaint_with_a_photo_files_the_case_with_its_attachment(client, runtime, complaint_process):
    data = {**COMPLAINT, "csrf_token": csrf(client, "/complain"),
            "attachments": [(io.BytesIO(png(8, 6)), "broken-lid.png")]}
    response = client.post("/complain", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    [row] = runtime.instances()
    listed = case_notes.attachments(runtime, lead_actor(), row["id"])
    assert [(a["filename"], a["content_type"], a["uploaded_by"]) for a in listed] == [
        ("broken-lid.png", "image/png", None)]
    assert client.get("/complain/thanks").status_code == 200  # reloading the thank-you page files nothing
    assert len(runtime.instances()) == 1


def test_complaint_with_a_disguised_file_files_nothing(client, runtime, complaint_process):
    data = {**COMPLAINT, "csrf_token": csrf(client, "/complain"), "attachments": [(io.BytesIO(EXE), "photo.jpg")]}
    response = client.post("/complain", data=data, content_type="multipart/form-data")
    assert response.status_code == 422
    assert 'data-field="attachments"' in response.get_data(as_text=True)
    assert runtime.instances() == []
