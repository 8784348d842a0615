"""REST API: tokens and task calls (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.integration.conftest import start_review, token


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()["error"]
    assert set(body) == {"code", "message", "details"}
    if code:
        assert body["code"] == code
    return body


def test_token_and_401s(client):
    _error(client.get("/api/v1/tasks"), 401, "unauthorized")
    _error(client.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"}), 401)
    _error(client.get("/api/v1/tasks", headers={"Authorization": "Basic abc"}), 401)
    _error(client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": "wrong-one"}), 401)
    body = _error(client.post("/api/v1/auth/token", json={"username": "rita.reviewer"}), 422)
    assert body["details"] == [{"field": "password", "message": "Missing data for required field."}]
    response = client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": "correct-horse-9"})
    assert response.status_code == 200 and response.get_json()["expires_at"]
    assert client.get("/api/v1/tasks", headers=token(client, "rita.reviewer")).status_code == 200


def test_tokens_are_stored_hashed(client, db):
    from sqlalchemy import select

    from storage.api_tokens import ApiToken

    headers = token(client, "rita.reviewer")
    raw = headers["Authorization"].split()[1]
    with db.read() as session:
        stored = list(session.scalars(select(ApiToken.token_hash)))
    assert stored and raw not in stored and all(len(h) == 64 for h in stored)


def test_list_get_claim_complete(client, runtime):
    instance = start_review(runtime, "C-9")
    rita = token(client, "rita.reviewer")
    tasks = client.get("/api/v1/tasks?state=open", headers=rita).get_json()
    assert [t["name"] for t in tasks] == ["Assess request"]
    task = tasks[0]
    assert set(task) >= {"id", "name", "instance_id", "process_key", "assignee", "groups", "due_at", "state", "form"}
    assert task["groups"] == ["reviewers"] and task["instance_id"] == instance.id
    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=rita).get_json()
    assert [f["id"] for f in detail["form"]["fields"]] == ["amount", "urgent", "note"]
    assert detail["form"]["fields"][0]["required"] is True and detail["escalations"] == []
    claimed = client.post(f"/api/v1/tasks/{task['id']}/claim", headers=rita)
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "rita.reviewer"
    assert [t["id"] for t in client.get("/api/v1/tasks?mine=1", headers=rita).get_json()] == [task["id"]]
    done = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=rita, json={"data": {"amount": 500}})
    assert done.status_code == 200
    body = done.get_json()["instance"]
    assert body["data"]["amount"] == 500 and body["status"] == "running"
    assert any(t["name"] == "Approve" and t["state"] == "open" for t in body["tasks"])
    _error(client.post(f"/api/v1/tasks/{task['id']}/complete", headers=rita, json={"data": {"amount": 1}}), 409, "conflict")


def test_claim_conflict_and_unclaim(client, runtime):
    start_review(runtime)
    rita, rob = token(client, "rita.reviewer"), token(client, "rob.reviewer")
    task_id = client.get("/api/v1/tasks", headers=rita).get_json()[0]["id"]
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=rob).status_code == 200
    body = _error(client.post(f"/api/v1/tasks/{task_id}/claim", headers=rita), 409)
    assert "rob.reviewer" in body["message"]
    _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, json={"data": {"amount": 1}}), 409)
    _error(client.post(f"/api/v1/tasks/{task_id}/unclaim", headers=rita), 409)
    assert client.post(f"/api/v1/tasks/{task_id}/unclaim", headers=rob).get_json()["state"] == "open"


def test_complete_422_names_fields(client, runtime):
    start_review(runtime)
    rita = token(client, "rita.reviewer")
    task_id = client.get("/api/v1/tasks", headers=rita).get_json()[0]["id"]
    body = _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita,
                              json={"data": {"amount": -1, "bogus": 1}}), 422, "invalid_form")
    assert {d["field"] for d in body["details"]} == {"amount", "bogus"}
    body = _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, json={"data": {}}), 422)
    assert body["details"] == [{"field": "amount", "message": "is required"}]
    _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, json={"data": "x"}), 422)
    _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, data="{not json",
                       content_type="application/json"), 400)
    _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, json=[1]), 400)



def test_complete_body_kinds(client, runtime):
    """How `body()` reads each kind of body: none is {}; a body that is not sent as JSON (text, a form,
    as `curl -d` sends) is refused with 415 naming what to send, not read as nothing."""
    start_review(runtime)
    rita = token(client, "rita.reviewer")
    task_id = client.get("/api/v1/tasks", headers=rita).get_json()[0]["id"]
    required = [{"field": "amount", "message": "is required"}]
    assert _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita), 422)["details"] == required
    assert _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, data=b"",
                              content_type="application/json"), 422)["details"] == required
    as_text = _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita,
                                 data='{"data": {"amount": 1}}', content_type="text/plain"), 415)
    assert "application/json" in as_text["message"] and "text/plain" in as_text["message"]
    as_form = _error(client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, data={"data": "amount=1"}), 415)
    assert "application/x-www-form-urlencoded" in as_form["message"]
    assert client.get(f"/api/v1/tasks/{task_id}", headers=rita).get_json()["state"] in ("open", "claimed")
    done = client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, data='{"data": {"amount": 1}}',
                       content_type="application/json; charset=utf-8")
    assert done.status_code == 200 and done.get_json()["instance"]["data"]["amount"] == 1

def test_other_groups_task_and_unknown_task(client, runtime):
    start_review(runtime)
    rita, otto = token(client, "rita.reviewer"), token(client, "otto.outsider")
    task_id = client.get("/api/v1/tasks", headers=rita).get_json()[0]["id"]
    assert client.get("/api/v1/tasks", headers=otto).get_json() == []
    response = client.post(f"/api/v1/tasks/{task_id}/complete", headers=otto, json={"data": {"amount": 1}})
    # 404 while the runtime hides other groups' tasks; 403 once it refuses them explicitly.
    assert response.status_code in (403, 404)
    _error(response, response.status_code)
    _error(client.get("/api/v1/tasks/nope", headers=rita), 404, "not_found")
    _error(client.post("/api/v1/tasks/nope/claim", headers=rita), 404)
    _error(client.get("/api/v1/tasks?state=weird", headers=rita), 422)


def test_lead_completes_approve(client, runtime):
    instance = start_review(runtime)
    rita, lena = token(client, "rita.reviewer"), token(client, "lena.lead")
    task_id = client.get("/api/v1/tasks", headers=rita).get_json()[0]["id"]
    client.post(f"/api/v1/tasks/{task_id}/complete", headers=rita, json={"data": {"amount": 1, "urgent": True}})
    approve = [t for t in client.get("/api/v1/tasks", headers=lena).get_json() if t["name"] == "Approve"][0]
    # the reviewer may not complete the quality lead's step
    assert client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=rita,
                       json={"data": {"decision": "approve"}}).status_code in (403, 404)
    body = _error(client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=lena,
                              json={"data": {"decision": "maybe"}}), 422)
    assert body["details"][0]["field"] == "decision"
    done = client.post(f"/api/v1/tasks/{approve['id']}/complete", headers=lena, json={"data": {"decision": "approve"}})
    assert done.get_json()["instance"]["status"] == "completed"
    got = client.get(f"/api/v1/instances/{instance.id}", headers=rita).get_json()
    assert got["status"] == "completed" and {"data", "tasks", "incidents", "audit"} <= set(got)
