"""Security rules: CSRF, cookies, headers, login rate limit, upload limit, no string-built SQL."""

from __future__ import annotations

import io
import re
from pathlib import Path

from engine.credentials import SignInLimits
from tests.integration.conftest import PASSWORD, csrf, login, start_review, token


def test_csrf_missing_is_400_on_every_form(client, runtime):
    instance = start_review(runtime)
    assert client.post("/login", data={"username": "rita.reviewer", "password": PASSWORD}).status_code == 400
    assert client.post("/complain", data={"customer_name": "x"}).status_code == 400
    login(client, "lena.lead")
    task_id = runtime.tasks(_lead())[0].id
    for path in (f"/tasks/{task_id}/claim", f"/tasks/{task_id}/complete", f"/tasks/{task_id}/assign",
                 f"/instances/{instance.id}/cancel", "/processes", "/processes/simple_review/start", "/logout"):
        response = client.post(path, data={})
        assert response.status_code == 400, path
        assert b"security token" in response.data or b"CSRF" in response.data
    assert runtime.instance(instance.id).status == "running"


def test_csrf_wrong_token_is_400(client):
    csrf(client)
    response = client.post("/login", data={"username": "rita.reviewer", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400


def test_api_with_bearer_token_needs_no_csrf(client, runtime):
    start_review(runtime)
    headers = token(client, "rita.reviewer")
    task_id = client.get("/api/v1/tasks", headers=headers).get_json()[0]["id"]
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=headers).status_code == 200


def test_api_ignores_session_cookie(client):
    login(client, "rita.reviewer")
    assert client.get("/api/v1/tasks").status_code == 401


def test_session_cookie_flags(client):
    client.get("/login")
    response = client.post("/login", data={"username": "rita.reviewer", "password": PASSWORD,
                                           "csrf_token": csrf(client)})
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_security_headers(client):
    for path in ("/login", "/complain", "/api/v1/openapi.json"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        assert len(headers.getlist("Content-Security-Policy")) == 1 and "camera=()" in headers["Permissions-Policy"]
        # pages are not kept by shared caches; the API's JSON keeps whatever its view said
        assert (headers.get("Cache-Control") == "no-store") == (headers["Content-Type"].startswith("text/html"))


def test_templates_have_no_inline_scripts_or_styles():
    """Scripts are files under /static (or JSON data blocks, which never run): the CSP stays strict."""
    for template in (Path(__file__).parents[2] / "web" / "templates").glob("*.html"):
        text = template.read_text()
        for tag, body in re.findall(r"(<script[^>]*>)(.*?)</script>", text, re.S):
            assert 'type="application/json"' in tag or ("src=" in tag and not body.strip()), (template.name, tag)
        assert text.count("<script") == len(re.findall(r"<script[^>]*>.*?</script>", text, re.S)), template.name
        assert "<style" not in text and " style=" not in text, template.name


def test_login_rate_limit(client, app):
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=3)
    for _ in range(3):
        response = client.post("/login", data={"username": "rita.reviewer", "password": "wrong-pass",
                                               "csrf_token": csrf(client)})
        assert response.status_code == 401
    response = client.post("/login", data={"username": "rita.reviewer", "password": PASSWORD,
                                           "csrf_token": csrf(client)})
    assert response.status_code == 429  # even the right password waits until the window passes


def test_token_rate_limit(client, app):
    app.extensions["pdcaflow.signin_limits"] = SignInLimits(per_user=2)
    for _ in range(2):
        assert client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": "bad"}).status_code == 401
    response = client.post("/api/v1/auth/token", json={"username": "rita.reviewer", "password": PASSWORD})
    assert response.status_code == 429 and response.get_json()["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "300"


def test_upload_size_limit_api_is_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    headers = token(client, "lena.lead")
    response = client.post("/api/v1/processes", headers=headers, data={"file": (io.BytesIO(b"x" * 20_000), "a.bpmn")},
                           content_type="multipart/form-data")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"


def test_html_is_escaped(client, runtime):
    from engine.views import Actor

    runtime.start("simple_review", {"reference": "<script>alert(1)</script>"}, Actor.system("t"))
    login(client, "lena.lead")
    page = client.get("/instances").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


def test_no_sql_built_from_strings():
    root = Path(__file__).parents[2]
    pattern = re.compile(r"""(text|execute|exec_driver_sql)\(\s*f["']""")
    for folder in ("web", "storage", "engine"):
        for source in (root / folder).rglob("*.py"):
            if "migrations" in source.parts:
                continue
            for line in source.read_text().splitlines():
                if pattern.search(line) and "TRUNCATE" not in line:
                    raise AssertionError(f"{source}: {line.strip()}")
    for source in (root / "web").rglob("*.py"):
        assert "sqlalchemy" not in source.read_text(), f"{source} talks to the database directly"


def _lead():
    from tests.integration.conftest import lead_actor

    return lead_actor()
