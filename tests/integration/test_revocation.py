"""Ending sessions and API tokens server-side (engine/credentials.py): a cookie replayed after logout,
tokens and cookies after a password change or a deactivation, `pdcaflow revoke-tokens`, and the
token's last use recorded without a write on every request."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from engine import clock
from engine.accounts import update_user
from engine.views import Actor
from tests.integration.conftest import PASSWORD, csrf, login, token
from tests.integration.test_dashboard import statements, writes

ADMIN = Actor("ada.admin", frozenset({"admin"}), "admin")
ROOT = Path(__file__).parents[2]


def _signed_in_copy(app, client):
    """A second browser replaying the first one's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _inbox(client) -> int:
    return client.get("/inbox").status_code  # 200 signed in, 302 to /login otherwise


def test_cookie_replayed_after_logout_is_refused(app, client):
    login(client, "rita.reviewer")
    thief = _signed_in_copy(app, client)
    assert _inbox(thief) == 200
    response = client.post("/logout", data={"csrf_token": csrf(client, "/inbox")})
    assert response.status_code == 302
    assert _inbox(thief) == 302 and "/login" in thief.get("/inbox").headers["Location"]
    login(client, "rita.reviewer")  # signing in again works
    assert _inbox(client) == 200


def test_logout_keeps_api_tokens(app, client):
    headers = token(client, "rita.reviewer")
    login(client, "rita.reviewer")
    client.post("/logout", data={"csrf_token": csrf(client, "/inbox")})
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200


def test_password_change_ends_tokens_and_cookies(app, client, db):
    headers = token(client, "rita.reviewer")
    login(client, "rita.reviewer")
    thief = _signed_in_copy(app, client)
    update_user(db, "rita.reviewer", ADMIN, password="a-brand-new-secret")
    assert client.get("/api/v1/tasks", headers=headers).status_code == 401
    assert _inbox(client) == 302 and _inbox(thief) == 302
    assert client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": PASSWORD}).status_code == 401
    fresh = client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": "a-brand-new-secret"})
    assert fresh.status_code == 200
    assert client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {fresh.get_json()['token']}"}).status_code == 200


def test_deactivation_ends_everything_and_refuses_sign_in(app, client, db):
    headers = token(client, "rita.reviewer")
    login(client, "rita.reviewer")
    basic = {"Authorization": "Basic " + base64.b64encode(f"rita.reviewer:{PASSWORD}".encode()).decode()}
    assert client.get("/engine-rest/engine", headers=basic).status_code == 200  # now cached as verified
    admin = token(client, "ada.admin")
    response = client.patch("/api/v1/users/rita.reviewer", json={"active": False}, headers=admin)
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert client.get("/api/v1/tasks", headers=headers).status_code == 401
    assert _inbox(client) == 302
    assert client.get("/engine-rest/engine", headers=basic).status_code == 401  # the cache does not outlive it
    refused = client.post("/login", data={"username": "rita.reviewer", "password": PASSWORD,
                                          "csrf_token": csrf(client)})
    assert refused.status_code == 401
    assert client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": PASSWORD}).status_code == 401
    # reactivated: the password signs in again, the old token stays dead
    assert client.patch("/api/v1/users/rita.reviewer", json={"active": True}, headers=admin).status_code == 200
    assert client.get("/api/v1/tasks", headers=headers).status_code == 401
    login(client, "rita.reviewer")
    assert _inbox(client) == 200


def test_deactivated_user_is_refused_as_assignee(app, client, db, runtime):
    from tests.integration.conftest import start_review

    start_review(runtime, "C-9")
    lead = token(client, "lena.lead")
    task_id = client.get("/api/v1/tasks", headers=lead).get_json()[0]["id"]
    update_user(db, "rob.reviewer", ADMIN, active=False)
    response = client.post(f"/api/v1/tasks/{task_id}/assign", json={"assignee": "rob.reviewer"}, headers=lead)
    assert response.status_code == 422
    assert [d["field"] for d in response.get_json()["error"]["details"]] == ["assignee"]
    assert client.post(f"/api/v1/tasks/{task_id}/assign", json={"assignee": "rita.reviewer"},
                       headers=lead).status_code == 200


def test_revoke_tokens_cli(app, client, db):
    headers = token(client, "rita.reviewer")
    other = token(client, "rob.reviewer")
    login(client, "rita.reviewer")
    env = {**os.environ, "DATABASE_URL": db.url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "web.cli", "revoke-tokens", "rita.reviewer"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "revoked 1 API token of rita.reviewer" in done.stdout
    assert client.get("/api/v1/tasks", headers=headers).status_code == 401
    assert _inbox(client) == 302
    assert client.get("/api/v1/tasks", headers=other).status_code == 200  # other users keep theirs
    unknown = subprocess.run([sys.executable, "-m", "web.cli", "revoke-tokens", "nobody.here"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode != 0 and "no user nobody.here" in unknown.stderr


def test_token_use_is_not_written_on_every_request(app, client, db):
    headers = token(client, "rita.reviewer")
    assert client.get("/api/v1/tasks", headers=headers).status_code == 200  # the first use is recorded
    first = _last_used(client, "rita.reviewer")
    assert first is not None
    with statements(db) as seen:
        for _ in range(3):
            assert client.get("/api/v1/tasks", headers=headers).status_code == 200
    assert seen and writes(seen) == []  # read-only: a GET works on a database that cannot write
    assert _last_used(client, "rita.reviewer") == first
    with clock.shifted(timedelta(minutes=6)):
        assert client.get("/api/v1/tasks", headers=headers).status_code == 200
        assert _last_used(client, "rita.reviewer") > first


def _last_used(client, username: str):
    from datetime import datetime

    admin = token(client, "ada.admin")
    rows = client.get(f"/api/v1/users/{username}/tokens", headers=admin).get_json()
    value = [r for r in rows if r["active"]][0]["last_used_at"]
    return datetime.fromisoformat(value) if value else None
