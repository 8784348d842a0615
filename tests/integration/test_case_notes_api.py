"""Comments and attachments on a case over the API (DESIGN §8): who may read and add them (who may
see the instance; 404 for everyone else), the comment length limit, attachment size and type limits
(type sniffed from the content), and the download's headers."""

from __future__ import annotations

import io

import pytest

from engine.settings import Settings, configure
from tests.fixtures.sample_files import EXE, HTML, PDF, TEXT, png
from tests.integration.conftest import lead_actor, start_review, token


def _files(*files: tuple[str, bytes]) -> dict:
    return {"file": [(io.BytesIO(content), name) for name, content in files]}


def _upload(client, instance_id: str, headers: dict, *files: tuple[str, bytes]):
    return client.post(f"/api/v1/instances/{instance_id}/attachments", headers=headers, data=_files(*files),
                       content_type="multipart/form-data")


def test_comments_are_read_and_written_by_who_sees_the_case(client, runtime):
    instance = start_review(runtime)
    rita, otto = token(client, "rita.reviewer"), token(client, "otto.outsider")
    url = f"/api/v1/instances/{instance.id}/comments"
    created = client.post(url, headers=rita, json={"body": "  Called the customer back.  "})
    assert created.status_code == 201, created.get_json()
    comment = created.get_json()
    assert comment["author"] == "rita.reviewer" and comment["body"] == "Called the customer back."
    listed = client.get(url, headers=token(client, "lena.lead")).get_json()
    assert [c["body"] for c in listed] == ["Called the customer back."] and listed[0]["id"] == comment["id"]
    audit = [a for a in runtime.instance(instance.id).audit if a.type == "comment"]
    assert audit and audit[0].actor == "rita.reviewer" and audit[0].payload["comment"] == comment["id"]

    # an employee outside the case: 404 for reading and writing, whatever the body
    for response in (client.get(url, headers=otto), client.post(url, headers=otto, json={"body": "hi"}),
                     client.post(url, headers=otto, json={"body": ""})):
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/instances/no-such-case/comments", headers=rita).status_code == 404
    assert client.get(url).status_code == 401
    assert len(client.get(url, headers=rita).get_json()) == 1


@pytest.mark.parametrize("payload, field", [({"body": ""}, "body"), ({"body": "x" * 4001}, "body"), ({}, "body"),
                                            ({"body": 5}, "body")])
def test_a_bad_comment_is_422_naming_the_field(client, runtime, payload, field):
    instance = start_review(runtime)
    response = client.post(f"/api/v1/instances/{instance.id}/comments", headers=token(client, "rita.reviewer"),
                           json=payload)
    assert response.status_code == 422
    assert [d["field"] for d in response.get_json()["error"]["details"]] == [field]


def test_blank_comment_is_refused_by_the_engine_too(client, runtime):
    instance = start_review(runtime)
    response = client.post(f"/api/v1/instances/{instance.id}/comments", headers=token(client, "rita.reviewer"),
                           json={"body": "   \n "})
    assert response.status_code == 422 and response.get_json()["error"]["details"][0]["field"] == "body"


def test_attachments_upload_list_and_download(client, runtime):
    instance = start_review(runtime)
    rita = token(client, "rita.reviewer")
    photo = png(4, 3)
    response = _upload(client, instance.id, rita, ("broken part.png", photo), ("8D report.pdf", PDF),
                       ("notes.txt", TEXT))
    assert response.status_code == 201, response.get_json()
    stored = {a["filename"]: a for a in response.get_json()}
    assert {n: a["content_type"] for n, a in stored.items()} == {
        "broken part.png": "image/png", "8D report.pdf": "application/pdf", "notes.txt": "text/plain"}
    assert stored["broken part.png"]["size"] == len(photo) and stored["broken part.png"]["uploaded_by"] == "rita.reviewer"
    listed = client.get(f"/api/v1/instances/{instance.id}/attachments", headers=rita).get_json()
    assert [a["filename"] for a in listed] == ["broken part.png", "8D report.pdf", "notes.txt"]

    got = client.get(f"/api/v1/attachments/{stored['broken part.png']['id']}", headers=rita)
    assert got.status_code == 200 and got.data == photo
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"].startswith("attachment;") and "broken" in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    text = client.get(f"/api/v1/attachments/{stored['notes.txt']['id']}", headers=rita)
    assert text.headers["Content-Type"].startswith("text/plain") and text.data == TEXT
    kinds = [a.payload["filename"] for a in runtime.instance(instance.id).audit if a.type == "attach"]
    assert kinds == ["broken part.png", "8D report.pdf", "notes.txt"]


def test_attachments_are_hidden_from_employees_outside_the_case(client, runtime):
    instance = start_review(runtime)
    rita, otto = token(client, "rita.reviewer"), token(client, "otto.outsider")
    attachment = _upload(client, instance.id, rita, ("photo.png", png())).get_json()[0]
    for response in (client.get(f"/api/v1/attachments/{attachment['id']}", headers=otto),
                     client.get(f"/api/v1/instances/{instance.id}/attachments", headers=otto),
                     _upload(client, instance.id, otto, ("photo.png", png())),
                     client.get("/api/v1/attachments/0123456789abcdef", headers=rita)):
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert len(client.get(f"/api/v1/instances/{instance.id}/attachments", headers=rita).get_json()) == 1
    # once a task of the case is his, so are its files
    runtime.assign(instance.tasks[0].id, lead_actor(), "otto.outsider")
    assert client.get(f"/api/v1/attachments/{attachment['id']}", headers=otto).status_code == 200


@pytest.mark.parametrize("name, content", [
    ("photo.jpg", HTML),          # a web page named as a photo
    ("report.pdf", EXE),          # a program named as a PDF
    ("setup.exe", EXE),           # a program
    ("page.html", HTML),          # text, but not named as text
    ("photo.pdf", png()),         # a real image whose name says otherwise
    ("empty.txt", b""),
])
def test_wrong_types_are_422_naming_the_field_and_store_nothing(client, runtime, name, content):
    instance = start_review(runtime)
    rita = token(client, "rita.reviewer")
    response = _upload(client, instance.id, rita, ("fine.png", png()), (name, content))
    assert response.status_code == 422, response.get_json()
    assert [d["field"] for d in response.get_json()["error"]["details"]] == ["file"]
    assert client.get(f"/api/v1/instances/{instance.id}/attachments", headers=rita).get_json() == []


def test_too_large_is_413_and_no_file_is_422(client, runtime):
    configure(Settings(attachment_max_bytes=2000))
    instance = start_review(runtime)
    rita = token(client, "rita.reviewer")
    over = _upload(client, instance.id, rita, ("big.txt", b"a" * 2001))
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "too_large"
    assert over.get_json()["error"]["details"][0]["field"] == "file"
    way_over = _upload(client, instance.id, rita, ("huge.txt", b"a" * (2 * 1024 * 1024)))  # past the body limit
    assert way_over.status_code == 413
    assert _upload(client, instance.id, rita, ("ok.txt", b"a" * 2000)).status_code == 201
    none = client.post(f"/api/v1/instances/{instance.id}/attachments", headers=rita, data={},
                       content_type="multipart/form-data")
    assert none.status_code == 422 and none.get_json()["error"]["details"][0]["field"] == "file"


def test_the_allowed_types_are_a_setting(client, runtime):
    configure(Settings(attachment_types=("pdf",)))
    instance = start_review(runtime)
    rita = token(client, "rita.reviewer")
    assert _upload(client, instance.id, rita, ("photo.png", png())).status_code == 422
    assert _upload(client, instance.id, rita, ("8D.pdf", PDF)).status_code == 201


def test_acting_on_a_hidden_task_is_404_without_its_name(client, runtime):
    instance = start_review(runtime)
    otto = token(client, "otto.outsider")
    task_id = instance.tasks[0].id
    for verb, payload in (("claim", None), ("unclaim", None), ("complete", {"data": {}})):
        response = client.post(f"/api/v1/tasks/{task_id}/{verb}", headers=otto, json=payload)
        assert response.status_code == 404, (verb, response.get_json())
        assert instance.tasks[0].name not in response.get_json()["error"]["message"]
    # once completed by someone else, still 404 for him (not a 409 naming the task and who did it)
    rita = token(client, "rita.reviewer")
    assert client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita,
                       json={"data": {"amount": 5}}).status_code == 200
    for verb in ("claim", "unclaim", "complete"):
        response = client.post(f"/api/v1/tasks/{task_id}/{verb}", headers=otto, json={"data": {}})
        assert response.status_code == 404, (verb, response.get_json())
