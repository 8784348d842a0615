"""Browser tests: a customer files a complaint at /complain (the complaint process's start form
refuses a too short description first), customer service signs in and completes the acknowledgement
from the inbox; and on the shipped process library a quality lead triages in the inbox, an
employee completes a corrective action and the instance page shows the progress.
Screenshots go to test-artifacts/. Needs Debian's /usr/bin/chromium."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.accounts import save_user
from engine.runtime import Runtime
from engine.views import Actor
from tests.conftest import PROCESSES, make_db, serving, skip_or_fail
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
    runtime.deploy_paths([PROCESSES])
    save_user(db, "rita.service", "employee", password="correct-horse-9", groups=["customer_service"])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "browser-test", "INSTANCE_DIR": str(tmp_path)})
    try:
        with serving(app) as base:
            yield base, runtime
    finally:
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
        page.fill("#c_description", "Broken")
        page.click("button[type=submit]")
        assert "must be at least 10 characters" in page.inner_text(".field-error")
        page.fill("#c_description", "The lid does not close.")
        page.screenshot(path=str(ARTIFACTS / "01-complaint-form.png"), full_page=True)
        page.click("button[type=submit]")
        reference = page.inner_text("#reference")
        assert reference.startswith("C-")
        page.screenshot(path=str(ARTIFACTS / "02-complaint-received.png"), full_page=True)

        page.goto(f"{base}/login")
        page.fill("#username", "rita.service")
        page.fill("#password", "correct-horse-9")
        page.click("button[type=submit]")
        page.goto(f"{base}/inbox?tab=groups")
        page.screenshot(path=str(ARTIFACTS / "03-inbox.png"), full_page=True)
        page.click("text=Claim")
        page.goto(f"{base}/inbox?tab=mine")
        page.click("a.name")
        page.fill("#f_acknowledgement_message", "Thanks")
        page.click("form.taskform button[type=submit]")
        assert "Message to the customer, exactly as they receive it" in page.inner_text(".field-error")
        page.screenshot(path=str(ARTIFACTS / "04-task-error.png"), full_page=True)
        page.fill("#f_acknowledgement_message", "Thank you, we are looking into it.")
        page.click("form.taskform button[type=submit]")
        page.screenshot(path=str(ARTIFACTS / "05-after-complete.png"), full_page=True)
        browser.close()
    instance_id = runtime.instances()[0]["id"]
    instance = runtime.instance(instance_id)
    assert instance.business_key == reference and instance.data["description"] == "The lid does not close."
    assert instance.data["acknowledgement_message"] == "Thank you, we are looking into it."
    assert not [e for e in errors if "Content Security Policy" in e], errors


# ---------------------------------------------------------------------- the shipped process library
LEAD_PASSWORD = "lead-password-9"
GRETA = {"#c_customer_name": "Greta Gruber", "#c_customer_email": "greta@example.com",
         "#c_product": "Espresso machine EM-5", "#c_description": "The steam wand leaks after a week."}


def fill_complaint(page, base: str, description: str = GRETA["#c_description"]) -> None:
    """Open /complain and fill in Greta Gruber's complaint (not submitted: callers add files first)."""
    page.goto(f"{base}/complain")
    for selector, value in {**GRETA, "#c_description": description}.items():
        page.fill(selector, value)


@pytest.fixture
def library_server(tmp_path):
    """The real process library (processes/), a quality lead, customer service and an action owner."""
    yield from serve_library(make_db("sqlite", tmp_path, None), tmp_path)


@contextmanager
def library_site(db, runtime, tmp_path, users: list[tuple[str, str, list[str]]]) -> Iterator[str]:
    """The shipped process library deployed and served over real HTTP, with `users` ((name, role,
    groups), password LEAD_PASSWORD, which `_sign_in` uses): the base URL."""
    runtime.deploy_paths([PROCESSES])
    for username, role, groups in users:
        save_user(db, username, role, password=LEAD_PASSWORD, groups=groups)
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "browser-test", "INSTANCE_DIR": str(tmp_path)})
    with serving(app) as base:
        yield base


def serve_library(db, tmp_path):
    """Serve the shipped process library with its demo roles over real HTTP: yields (base URL, runtime)."""
    runtime = Runtime(db)
    users = [("lena.lead", "quality_lead", ["quality_lead"]), ("carl.service", "employee", ["customer_service"]),
             ("ann.owner", "employee", ["production"])]
    try:
        with library_site(db, runtime, tmp_path, users) as base:
            yield base, runtime
    finally:
        db.dispose()


def _sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", LEAD_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/inbox*")


def _open_task(driver_tasks, spec_id: str):
    return next(t for t in driver_tasks if t.spec_id == spec_id and t.state in ("open", "claimed"))


def _diagram_marks(page) -> dict[str, str]:
    """Element id -> done/active/incident, read from the bpmn-js viewer's pf-* classes (DESIGN §8)."""
    page.wait_for_selector(".pf-diagram.pf-ready")
    marks = {}
    for cls, name in (("pf-completed", "done"), ("pf-active", "active"), ("pf-incident", "incident")):
        for el in page.query_selector_all(f".djs-element.{cls}[data-element-id]"):
            marks[el.get_attribute("data-element-id")] = name
    return marks


def test_lead_triages_owner_acts_instance_shows_progress(library_server):
    """Complaint from the shipped library: the quality lead triages it in the inbox, an employee
    carries out the corrective action assigned to them, and the instance page's diagram shows the
    completed and active steps. Steps outside the browser's story go through the runtime."""
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, runtime = library_server
    service = Actor("carl.service", frozenset({"customer_service", "employee"}), "employee")
    lead = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
    instance = runtime.start("complaint_to_improvement", {
        "reference": "C-2026-000777", "customer_name": "Maria Kunde", "customer_email": "maria@example.org",
        "product": "Coffee grinder CG-200", "description": "Stopped after two days and smells burnt.",
        "effectiveness_wait": "P30D"}, Actor.system("test"))
    runtime.complete(_open_task(instance.tasks, "acknowledge").id, service,
                     {"acknowledgement_message": "Thank you, we are on it.", "acknowledgement_channel": "email"})
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        errors: list[str] = []

        # the quality lead triages the complaint from the "my groups" tab of the inbox
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        _sign_in(page, base, "lena.lead")
        page.goto(f"{base}/inbox?tab=groups")
        assert "Triage the complaint" in page.inner_text("table.tasks")
        page.screenshot(path=str(ARTIFACTS / "10-lead-inbox.png"), full_page=True)
        page.click("a.name:has-text('Triage the complaint')")
        page.select_option("#f_category", "product_quality")
        page.select_option("#f_customer_impact", "degraded")
        page.fill("#f_affected_units", "2")
        page.fill("#f_triage_notes", "Burnt smell: motor. Check the new motor supplier.")
        page.click("form.taskform button[type=submit]")
        page.wait_for_load_state()
        triaged = runtime.instance(instance.id)
        assert triaged.data["category"] == "product_quality" and triaged.data["severity"] == "minor"

        page.goto(f"{base}/instances/{instance.id}")
        marks = _diagram_marks(page)
        assert marks.get("acknowledge") == "done" and marks.get("triage") == "done", marks
        assert marks.get("reply") == "active", marks
        page.screenshot(path=str(ARTIFACTS / "11-instance-after-triage.png"), full_page=True)

        # reply, root cause and action plan (not this test's story) through the runtime
        runtime.complete(_open_task(triaged.tasks, "reply").id, service,
                         {"reply_message": "A replacement is on its way.", "remedy": "replacement"})
        current = runtime.instance(instance.id)
        runtime.complete(_open_task(current.tasks, "rca_analyse").id, lead, {
            "problem_statement": "Grinders fail within days", "why_1": "Motor overheats",
            "root_cause": "Insulation class too low", "similar_elsewhere": False})
        current = runtime.instance(instance.id)
        runtime.complete(_open_task(current.tasks, "rca_plan").id, lead, {
            "success_criteria": "No motor failures for 3 months", "action_1_what": "Change motor to class F",
            "action_1_owner": "ann.owner", "action_1_due": "2026-12-31"})

        # the action owner finds the action in "mine" and completes it
        owner_page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        owner_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        _sign_in(owner_page, base, "ann.owner")
        owner_page.goto(f"{base}/inbox?tab=mine")
        assert "Carry out the corrective action" in owner_page.inner_text("table.tasks")
        owner_page.screenshot(path=str(ARTIFACTS / "12-owner-inbox.png"), full_page=True)
        owner_page.click("a.name:has-text('Carry out the corrective action')")
        owner_page.fill('[id="f_action.done_at"]', "2026-11-20")
        owner_page.fill('[id="f_action.result"]', "Motor changed to class F, change note CN-12")
        owner_page.click("form.taskform button[type=submit]")
        owner_page.wait_for_load_state()
        owner_page.screenshot(path=str(ARTIFACTS / "13-owner-after-action.png"), full_page=True)

        done = runtime.instance(instance.id)
        action = next(t for t in done.tasks if t.spec_id == "rca_do_action")
        assert action.state == "completed" and action.completed_by == "ann.owner"
        assert not done.incidents and done.status == "running"

        page.goto(f"{base}/instances/{instance.id}")
        marks = _diagram_marks(page)
        assert {marks.get(k) for k in ("acknowledge", "triage", "reply")} == {"done"}, marks
        assert "Carry out the corrective action" in page.inner_text("table.list")
        page.screenshot(path=str(ARTIFACTS / "14-instance-after-action.png"), full_page=True)
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
