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
from tests.conftest import sql_statements
from tests.integration.conftest import PASSWORD, csrf, login, token
from tests.integration.test_dashboard import writes

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
    with sql_statements(db) as seen:
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


# ---------------------------------------------------------------------- who is calling, as it is now
# Each authenticated request reads who its caller is in one statement (a bearer token's validity with
# the user's role and groups; a cached HTTP Basic pair's generation with the same): nothing about the
# user outlives a change, even where the verified password is cached.
def _basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_cached_basic_password_is_refused_at_once_after_a_password_change(app, client, db):
    old = _basic("rita.reviewer")
    assert client.get("/engine-rest/engine", headers=old).status_code == 200  # verified: now cached
    assert client.get("/engine-rest/engine", headers=old).status_code == 200  # served from the cache
    update_user(db, "rita.reviewer", ADMIN, password="a-brand-new-secret")
    assert client.get("/engine-rest/engine", headers=old).status_code == 401
    assert client.get("/engine-rest/engine", headers=_basic("rita.reviewer", "a-brand-new-secret")).status_code == 200
    assert client.get("/engine-rest/engine", headers=old).status_code == 401  # the new pair did not revive it


def test_cached_basic_credentials_take_a_new_role_at_once(app, client, db):
    from engine.accounts import save_user

    save_user(db, "erp.worker", "worker", password=PASSWORD)
    worker = _basic("erp.worker")
    fetch = {"workerId": "w1", "maxTasks": 1, "topics": [{"topicName": "none-here", "lockDuration": 1000}]}
    assert client.post("/engine-rest/external-task/fetchAndLock", json=fetch, headers=worker).status_code == 200
    update_user(db, "erp.worker", ADMIN, role="employee")  # no new password: the cached pair stays verified
    refused = client.post("/engine-rest/external-task/fetchAndLock", json=fetch, headers=worker)
    assert refused.status_code == 403 and refused.get_json()["type"] == "AuthorizationException"


def test_bearer_token_takes_new_groups_and_role_at_once(app, client, db, runtime):
    from tests.integration.conftest import start_review

    start_review(runtime, "C-7")
    otto = token(client, "otto.outsider")  # purchasing: not a reviewer
    assert client.get("/api/v1/tasks", headers=otto).get_json() == []
    update_user(db, "otto.outsider", ADMIN, groups=["purchasing", "reviewers"])
    assert [t["name"] for t in client.get("/api/v1/tasks", headers=otto).get_json()] == ["Assess request"]
    start = {"data": {"reference": "C-8"}}
    assert client.post("/api/v1/processes/simple_review/instances", json=start, headers=otto).status_code == 403
    update_user(db, "otto.outsider", ADMIN, role="quality_lead")
    assert client.post("/api/v1/processes/simple_review/instances", json=start, headers=otto).status_code == 201


def test_one_revoked_token_is_refused_at_once_the_others_stay(app, client, db):
    first, second = token(client, "rita.reviewer"), token(client, "rita.reviewer")
    assert client.get("/api/v1/tasks", headers=first).status_code == 200
    admin = token(client, "ada.admin")
    rows = client.get("/api/v1/users/rita.reviewer/tokens", headers=admin).get_json()
    newest = rows[0]["id"]  # newest first: the second token
    assert client.delete(f"/api/v1/tokens/{newest}", headers=admin).status_code == 204
    assert client.get("/api/v1/tasks", headers=second).status_code == 401
    assert client.get("/api/v1/tasks", headers=first).status_code == 200


def test_a_caller_is_identified_in_one_statement(app, client, db):
    basic = _basic("rita.reviewer")
    assert client.get("/engine-rest/version", headers=basic).status_code == 200  # verified and cached
    headers = token(client, "rita.reviewer")
    assert client.get("/api/v1/notifications", headers=headers).status_code == 200  # first use recorded
    with sql_statements(db) as seen:
        assert client.get("/engine-rest/version", headers=basic).status_code == 200
    assert [s.split(" ", 1)[0].upper() for s in seen if not s.upper().startswith(("BEGIN", "ROLLBACK"))] == ["SELECT"]
    with sql_statements(db) as seen:
        assert client.get("/api/v1/processes", headers=headers).status_code == 200
    queries = [s for s in seen if not s.upper().startswith(("BEGIN", "ROLLBACK"))]
    assert len([s for s in queries if "api_token" in s]) == 1 and not writes(seen)
    assert not [s for s in queries if "app_user" in s and "api_token" not in s]  # no second look-up of the user
