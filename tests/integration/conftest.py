"""Web and API fixtures: an app on the `db` fixture (SQLite and PostgreSQL), users, the
simple_review process deployed, and helpers for CSRF tokens, sign-in and bearer tokens."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from engine.accounts import save_user
from engine.views import Actor
from tests.conftest import FIXTURES, PROCESSES
from web import create_app

PASSWORD = "correct-horse-9"
USERS = {
    "lena.lead": ("quality_lead", ["quality_lead"]),
    "rita.reviewer": ("employee", ["reviewers"]),
    "rob.reviewer": ("employee", ["reviewers"]),
    "otto.outsider": ("employee", ["purchasing"]),
    "ada.admin": ("admin", []),
}


@pytest.fixture
def app(db, runtime, tmp_path):
    for name, (role, groups) in USERS.items():
        save_user(db, name, role, password=PASSWORD, email=f"{name}@example.com", groups=groups)
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "test-secret", "TESTING": True,
                      "INSTANCE_DIR": str(tmp_path)})
    return app


@pytest.fixture
def complaint_process(app, runtime) -> str:
    """The shipped process library deployed: complaints go to complaint_to_improvement (the app's
    default), whose start form is the intake's rule set."""
    runtime.deploy_paths([PROCESSES])
    assert app.config["COMPLAINT_PROCESS"] == "complaint_to_improvement"
    return app.config["COMPLAINT_PROCESS"]


@pytest.fixture
def client(app):
    return app.test_client()


def csrf(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def post(client, path: str, data: dict | None = None, page: str = "/inbox", **kwargs):
    """POST a form the way a browser does: with the CSRF token of a page it loaded."""
    payload = dict(data or {})
    payload["csrf_token"] = csrf(client, page)
    return client.post(path, data=payload, **kwargs)


def token(client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def start_review(runtime, reference: str = "C-1"):
    return runtime.start("simple_review", {"reference": reference}, Actor.system("test"))


def lead_actor() -> Actor:
    return Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")


# /engine-rest: the external-task models of tests/constructs and a worker account (HTTP Basic)
ENGINE_REST_MODELS = Path(__file__).parents[1] / "constructs" / "models"


def basic(username: str = "erp.worker") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


@pytest.fixture
def rest(app, client, db, runtime):
    save_user(db, "erp.worker", "worker", password=PASSWORD)
    runtime.deploy_paths([ENGINE_REST_MODELS / "xt_order_lookup.bpmn", ENGINE_REST_MODELS / "xt_credit_note.bpmn"])
    return client
