"""Browser test: a customer files a complaint at /complain, a reviewer signs in and completes the
task from the inbox. Screenshots go to test-artifacts/. Needs Debian's /usr/bin/chromium."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine.accounts import save_user
from engine.runtime import Runtime
from tests.conftest import FIXTURES, make_db, skip_or_fail
from web import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path):
    db = make_db("sqlite", tmp_path, None)
    runtime = Runtime(db)
    runtime.deploy_paths([FIXTURES / "simple_review.bpmn"])
    save_user(db, "rita.reviewer", "employee", password="correct-horse-9", groups=["reviewers"])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "browser-test", "INSTANCE_DIR": str(tmp_path),
                      "COMPLAINT_PROCESS": "simple_review"})
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", runtime
    finally:
        http.shutdown()
        db.dispose()


def test_complaint_to_completed_task(server):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, runtime = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(f"{base}/complain")
        page.fill("#c_customer_name", "Ann Example")
        page.fill("#c_customer_email", "ann@example.com")
        page.fill("#c_product", "Kettle K2")
        page.fill("#c_description", "The lid does not close.")
        page.screenshot(path=str(ARTIFACTS / "01-complaint-form.png"), full_page=True)
        page.click("button[type=submit]")
        reference = page.inner_text("#reference")
        assert reference.startswith("C-")
        page.screenshot(path=str(ARTIFACTS / "02-complaint-received.png"), full_page=True)

        page.goto(f"{base}/login")
        page.fill("#username", "rita.reviewer")
        page.fill("#password", "correct-horse-9")
        page.click("button[type=submit]")
        page.goto(f"{base}/inbox?tab=groups")
        page.screenshot(path=str(ARTIFACTS / "03-inbox.png"), full_page=True)
        page.click("text=Claim")
        page.goto(f"{base}/inbox?tab=mine")
        page.click("a.name")
        page.fill("#f_amount", "-1")
        page.click("form.taskform button[type=submit]")
        assert "Amount" in page.inner_text(".field-error")
        page.screenshot(path=str(ARTIFACTS / "04-task-error.png"), full_page=True)
        page.fill("#f_amount", "12")
        page.click("form.taskform button[type=submit]")
        page.screenshot(path=str(ARTIFACTS / "05-after-complete.png"), full_page=True)
        browser.close()
    instance_id = runtime.instances()[0]["id"]
    instance = runtime.instance(instance_id)
    assert instance.business_key == reference and instance.data["amount"] == 12
    assert not [e for e in errors if "Content Security Policy" in e], errors
