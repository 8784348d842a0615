"""Accounts for admins: POST/PATCH /api/v1/users, a user's API tokens, and the Users page."""

from __future__ import annotations

import re

from tests.integration.conftest import PASSWORD, csrf, login, post, token


def test_create_user_then_sign_in(client):
    admin = token(client, "ada.admin")
    response = client.post("/api/v1/users", headers=admin, json={
        "username": "pia.production", "role": "employee", "password": "long-enough-1",
        "email": "pia@example.com", "groups": ["production"]})
    assert response.status_code == 201
    assert response.get_json() | {"created_at": None} == {
        "username": "pia.production", "role": "employee", "email": "pia@example.com", "active": True,
        "groups": ["production"], "created_at": None}
    assert client.post("/api/v1/auth/token", json={"username": "pia.production",
                                                   "password": "long-enough-1"}).status_code == 200
    assert client.get("/api/v1/users/pia.production", headers=admin).get_json()["groups"] == ["production"]
    assert "pia.production" in [u["username"] for u in client.get("/api/v1/users", headers=admin).get_json()]


def test_create_user_errors_name_the_fields(client):
    admin = token(client, "ada.admin")
    response = client.post("/api/v1/users", headers=admin, json={
        "username": "no spaces", "role": "boss", "password": "short", "email": "nope", "groups": ["bad group"]})
    assert response.status_code == 422
    assert {d["field"] for d in response.get_json()["error"]["details"]} == {
        "username", "role", "password", "email", "groups"}
    missing = client.post("/api/v1/users", headers=admin, json={})
    assert missing.status_code == 422
    assert {d["field"] for d in missing.get_json()["error"]["details"]} == {"username", "role", "password"}
    duplicate = client.post("/api/v1/users", headers=admin, json={
        "username": "rita.reviewer", "role": "employee", "password": "long-enough-1"})
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["details"][0]["field"] == "username"
    assert client.post("/api/v1/users", headers=admin, data="[1]",
                       content_type="application/json").status_code == 400


def test_only_admins_manage_users(client):
    lead = token(client, "lena.lead")
    assert client.get("/api/v1/users", headers=lead).status_code == 403
    assert client.post("/api/v1/users", headers=lead, json={
        "username": "x.y", "role": "admin", "password": "long-enough-1"}).status_code == 403
    assert client.patch("/api/v1/users/lena.lead", headers=lead, json={"role": "admin"}).status_code == 403
    assert client.get("/api/v1/users/lena.lead/tokens", headers=lead).status_code == 403
    assert client.delete("/api/v1/tokens/1", headers=lead).status_code == 403
    assert client.get("/api/v1/users").status_code == 401


def test_patch_user_changes_only_what_is_sent(client):
    admin = token(client, "ada.admin")
    response = client.patch("/api/v1/users/rita.reviewer", headers=admin,
                            json={"role": "quality_lead", "groups": ["reviewers", "production"]})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["role"], body["groups"], body["email"]) == ("quality_lead", ["production", "reviewers"],
                                                             "rita.reviewer@example.com")
    rita = token(client, "rita.reviewer")  # the new role applies to her next request
    assert client.get("/api/v1/kpis", headers=rita).status_code == 200
    cleared = client.patch("/api/v1/users/rita.reviewer", headers=admin, json={"email": None}).get_json()
    assert cleared["email"] is None and cleared["role"] == "quality_lead"
    assert client.patch("/api/v1/users/nobody.here", headers=admin, json={"active": False}).status_code == 404
    bad = client.patch("/api/v1/users/rita.reviewer", headers=admin, json={"active": "maybe", "shoe": 1})
    assert bad.status_code == 422
    assert {d["field"] for d in bad.get_json()["error"]["details"]} == {"active", "shoe"}


def test_admins_cannot_lock_themselves_out(client):
    admin = token(client, "ada.admin")
    response = client.patch("/api/v1/users/ada.admin", headers=admin, json={"active": False, "role": "employee"})
    assert response.status_code == 422
    assert {d["field"] for d in response.get_json()["error"]["details"]} == {"active", "role"}
    assert client.get("/api/v1/users", headers=admin).status_code == 200


def test_list_and_revoke_tokens(client):
    rita = token(client, "rita.reviewer")
    token(client, "rita.reviewer")
    admin = token(client, "ada.admin")
    listed = client.get("/api/v1/users/rita.reviewer/tokens", headers=admin).get_json()
    assert len(listed) == 2 and all(t["active"] and "token" not in t for t in listed)
    assert client.get("/api/v1/tasks", headers=rita).status_code == 200
    newest, oldest = listed
    assert client.delete(f"/api/v1/tokens/{oldest['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/tasks", headers=rita).status_code == 401  # rita's first token was the oldest
    assert client.delete(f"/api/v1/tokens/{oldest['id']}", headers=admin).status_code == 204  # again: fine
    states = {t["id"]: t["active"] for t in client.get("/api/v1/users/rita.reviewer/tokens", headers=admin).get_json()}
    assert states == {oldest["id"]: False, newest["id"]: True}
    assert client.delete("/api/v1/tokens/999999", headers=admin).status_code == 404
    assert client.delete("/api/v1/tokens/abc", headers=admin).status_code == 404
    assert client.get("/api/v1/users/nobody.here/tokens", headers=admin).status_code == 404
    revoked = client.delete("/api/v1/users/rita.reviewer/tokens", headers=admin)
    assert revoked.status_code == 200 and revoked.get_json() == {"revoked": 1}


def test_users_page_creates_edits_and_deactivates(client):
    login(client, "ada.admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Add a user" in page and "rita.reviewer" in page
    bad = post(client, "/admin/users", {"username": "x", "role": "employee", "password": "short"}, page="/admin/users")
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'class="error-summary"' in html and 'href="#u_username"' in html and 'href="#u_password"' in html
    created = post(client, "/admin/users", {"username": "pia.production", "role": "employee", "password": "long-enough-1",
                                            "groups": "production, purchasing", "email": ""}, page="/admin/users")
    assert created.status_code == 302 and created.headers["Location"].endswith("/admin/users/pia.production")
    taken = post(client, "/admin/users", {"username": "pia.production", "role": "employee",
                                          "password": "long-enough-1"}, page="/admin/users")
    assert taken.status_code == 409 and "this name is taken" in taken.get_data(as_text=True)
    edit = "/admin/users/pia.production"
    assert "production, purchasing" in client.get(edit).get_data(as_text=True)
    assert post(client, edit, {"role": "quality_lead", "groups": "production", "email": "pia@example.com"},
                page=edit).status_code == 302
    page = client.get(edit).get_data(as_text=True)
    assert re.search(r'<option value="quality_lead" selected', page) and "pia@example.com" in page
    other = client.application.test_client()
    login(other, "pia.production", "long-enough-1")
    assert other.get("/inbox").status_code == 200
    assert post(client, f"{edit}/active", {"active": "0"}, page=edit).status_code == 302
    assert other.get("/inbox").status_code == 302  # her session ended
    assert "deactivated" in client.get("/admin/users").get_data(as_text=True)
    assert post(client, f"{edit}/active", {"active": "1"}, page=edit).status_code == 302
    assert post(client, f"{edit}/password", {"password": "x"}, page=edit).status_code == 422
    assert post(client, f"{edit}/password", {"password": "another-long-2"}, page=edit).status_code == 302
    login(other, "pia.production", "another-long-2")
    assert client.get("/admin/users/nobody.here").status_code == 404


def test_users_page_tokens_and_access(client):
    rita = token(client, "rita.reviewer")
    login(client, "ada.admin")
    page = client.get("/admin/users/rita.reviewer").get_data(as_text=True)
    token_id = re.search(r'/admin/tokens/(\d+)/revoke', page).group(1)
    assert post(client, f"/admin/tokens/{token_id}/revoke", page="/admin/users/rita.reviewer").status_code == 302
    assert client.get("/api/v1/tasks", headers=rita).status_code == 401
    assert "revoked" in client.get("/admin/users/rita.reviewer").get_data(as_text=True)
    employee = client.application.test_client()
    login(employee, "rob.reviewer", PASSWORD)
    assert employee.get("/admin/users").status_code == 403
    assert employee.post("/admin/users", data={"csrf_token": csrf(employee, "/inbox"), "username": "z.z",
                                               "role": "admin", "password": "long-enough-1"}).status_code == 403
