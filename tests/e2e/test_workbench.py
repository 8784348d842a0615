"""The quality lead's workbench in real Chromium (issue 13): the bpmn-js viewer on instance pages
(pf-* classes, zoom, fit, element details), the process page with its start form, and the modeler.
Each test runs on SQLite and PostgreSQL. Screenshots at 1366×768 and 390 px go to test-artifacts/.
Needs Debian's /usr/bin/chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from engine.kpis import refresh_facts
from engine.views import Actor
from tests.conftest import make_db, skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, _open_task, _sign_in, serve_library

pytestmark = pytest.mark.browser
SERVICE = Actor("carl.service", frozenset({"customer_service", "employee"}), "employee")
LEAD = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
COMPLAINT = {"reference": "C-2026-000901", "customer_name": "Maria Kunde", "customer_email": "maria@example.org",
             "product": "Coffee grinder CG-200", "description": "Stopped after two days and smells burnt.",
             "effectiveness_wait": "P30D"}


@pytest.fixture(params=["sqlite", "postgresql"])
def library_server(request, tmp_path, pg_database):
    """The shipped process library (processes/), a quality lead and two employees, on each database."""
    yield from serve_library(make_db(request.param, tmp_path, pg_database), tmp_path)


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def _page(browser, errors, width=1366, height=768):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _marked(page, cls: str) -> set[str]:
    return {el.get_attribute("data-element-id") for el in page.query_selector_all(f".djs-element.{cls}")}


def test_instance_page_marks_elements_and_flows(library_server, chromium):
    base, runtime = library_server
    instance = runtime.start("complaint_to_improvement", COMPLAINT, Actor.system("test"))
    runtime.complete(_open_task(instance.tasks, "acknowledge").id, SERVICE,
                     {"acknowledgement_message": "Thank you, we are on it.", "acknowledgement_channel": "email"})
    errors: list[str] = []
    page = _page(chromium, errors)
    _sign_in(page, base, "lena.lead")
    page.goto(f"{base}/instances/{instance.id}")
    page.wait_for_selector(".pf-diagram.pf-ready")
    completed = _marked(page, "pf-completed")
    assert {"complaint_received", "register", "acknowledge", "record_ack"} <= completed, completed
    assert {"flow_register_to_acknowledge", "flow_record_ack_to_triage"} <= completed
    assert _marked(page, "pf-active") == {"triage"}
    assert not _marked(page, "pf-incident")
    # nothing clipped: after fit-to-screen every shape lies inside the canvas
    box = page.locator(".pf-canvas").bounding_box()
    for element_id in ("containment", "closed", "closed_invalid", "complaint_received"):
        shape = page.locator(f'.djs-element[data-element-id="{element_id}"]').bounding_box()
        assert shape and box["x"] - 1 <= shape["x"] and shape["x"] + shape["width"] <= box["x"] + box["width"] + 1, element_id
        assert box["y"] - 1 <= shape["y"] and shape["y"] + shape["height"] <= box["y"] + box["height"] + 1, element_id
    page.screenshot(path=str(ARTIFACTS / "w01-instance-1366.png"), full_page=True)
    # zoom in makes shapes bigger; fit brings them back
    before = page.locator('.djs-element[data-element-id="triage"]').bounding_box()["width"]
    page.click(".pf-controls button[title='Zoom in']")
    page.click(".pf-controls button[title='Zoom in']")
    assert page.locator('.djs-element[data-element-id="triage"]').bounding_box()["width"] > before * 1.3
    page.click(".pf-controls button[title='Fit to screen']")
    assert abs(page.locator('.djs-element[data-element-id="triage"]').bounding_box()["width"] - before) < 2
    # a click on the open task shows who it waits for
    page.click('.djs-element[data-element-id="triage"]')
    details = page.inner_text(".pf-details")
    assert "Triage the complaint" in details and "quality_lead" in details, details
    page.screenshot(path=str(ARTIFACTS / "w02-instance-details-1366.png"), full_page=True)
    phone = _page(chromium, errors, 390, 844)
    _sign_in(phone, base, "lena.lead")
    phone.goto(f"{base}/instances/{instance.id}")
    phone.wait_for_selector(".pf-diagram.pf-ready")
    phone.screenshot(path=str(ARTIFACTS / "w03-instance-390.png"), full_page=True)
    assert not errors, errors


def test_process_page_starts_from_the_start_form(library_server, chromium):
    base, runtime = library_server
    runtime.start("complaint_to_improvement", COMPLAINT, Actor.system("test"))
    errors: list[str] = []
    page = _page(chromium, errors)
    _sign_in(page, base, "lena.lead")
    page.goto(f"{base}/processes/complaint_to_improvement")
    page.wait_for_selector(".pf-diagram.pf-ready")
    badge = page.locator('.djs-overlays[data-container-id="acknowledge"] .pf-count-running')
    assert badge.inner_text() == "1"
    page.screenshot(path=str(ARTIFACTS / "w10-process-page-1366.png"), full_page=True)
    page.fill("#f_customer_name", "Ann Example")
    page.fill("#f_customer_email", "ann@example.com")
    page.fill("#f_product", "Kettle K2")
    page.fill("#f_description", "Broken")
    page.click("#start-form button[type=submit]")
    assert "at least 10 characters" in page.inner_text('.field-error[data-field="description"]')
    page.screenshot(path=str(ARTIFACTS / "w11-process-start-refused-1366.png"), full_page=True)
    page.fill("#f_description", "The lid does not close any more.")
    page.click("#start-form button[type=submit]")
    page.wait_for_url(f"{base}/instances/*")
    page.wait_for_selector(".pf-diagram.pf-ready")
    assert _marked(page, "pf-active") == {"acknowledge"}
    assert len(runtime.instances(key="complaint_to_improvement")) == 2
    phone = _page(chromium, errors, 390, 844)
    _sign_in(phone, base, "lena.lead")
    phone.goto(f"{base}/processes/complaint_to_improvement")
    phone.wait_for_selector(".pf-diagram.pf-ready")
    phone.screenshot(path=str(ARTIFACTS / "w12-process-page-390.png"), full_page=True)
    assert not [e for e in errors if "status of 422" not in e], errors  # the refused start is a 422 page


def _new_user_task_after(page, element_id: str) -> str:
    """Append a task to an element through bpmn-js's context pad and make it a user task (the wrench)."""
    page.click(f'.djs-element[data-element-id="{element_id}"]')
    page.click('.djs-context-pad [data-action="append.append-task"]')
    page.keyboard.press("Escape")  # leave the label editor bpmn-js opens on a new shape
    page.click('.djs-context-pad [data-action="replace"]')
    page.click('.djs-popup [data-id="replace-with-user-task"]')
    return page.input_value("#prop-id")


def test_modeler_adds_a_user_task_validates_and_deploys_the_next_version(library_server, chromium):
    base, runtime = library_server
    errors: list[str] = []
    page = _page(chromium, errors)
    _sign_in(page, base, "lena.lead")
    page.goto(f"{base}/processes/complaint_to_improvement")
    page.click("#open-modeler")
    page.wait_for_selector(".pf-modeler.pf-ready")
    assert page.input_value("#prop-id") == "complaint_to_improvement"  # nothing selected: the process
    task_id = _new_user_task_after(page, "complaint_received")
    assert task_id and task_id != "complaint_received"
    page.fill("#prop-name", "Check the packaging")
    page.press("#prop-name", "Tab")
    page.fill("#prop-candidateGroups", "production")
    page.press("#prop-candidateGroups", "Tab")
    page.fill("#prop-dueDate", "P3D")
    page.press("#prop-dueDate", "Tab")
    page.click("#add-form-field")  # a required yes/no field on the task's form
    page.fill("#form-0-id", "packaging_ok")
    page.press("#form-0-id", "Tab")
    page.fill("#form-0-label", "Packaging is fine")
    page.press("#form-0-label", "Tab")
    page.select_option("#form-0-type", "boolean")
    page.check("#form-0-required")
    page.click("#add-extension-property")  # escalation goes to production after two days, not one
    page.fill("#ext-0-value", "P2D")
    page.press("#ext-0-value", "Tab")
    page.screenshot(path=str(ARTIFACTS / "w20-modeler-properties-1366.png"), full_page=True)

    # a broken due date: listed with its line and element, marked on the element, not deployed
    page.fill("#prop-dueDate", "${(")
    page.press("#prop-dueDate", "Tab")
    page.click("#validate")
    page.wait_for_selector(f'#problems li.error[data-element-id="{task_id}"]')
    assert "line " in page.inner_text(f'#problems li.error[data-element-id="{task_id}"]')
    assert page.locator(f'.djs-element.pf-error[data-element-id="{task_id}"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "w21-modeler-error-marker-1366.png"), full_page=True)
    page.click("#deploy")
    page.wait_for_selector("#modeler-status.error")
    assert [d["version"] for d in runtime.definitions_list(all_versions=True)
            if d["key"] == "complaint_to_improvement"] == [1]

    # fixed: valid, deployed as v2, and the new version's task reaches the group
    page.click(f'#problems li[data-element-id="{task_id}"]')  # selects the element it names
    assert page.input_value("#prop-id") == task_id
    page.fill("#prop-dueDate", "P3D")
    page.press("#prop-dueDate", "Tab")
    page.click("#validate")
    page.wait_for_selector("#modeler-status.ok")
    assert page.locator(".djs-element.pf-error").count() == 0
    # compared with the running v1: the new task (and its flow) added, the start event changed nothing
    assert task_id in _marked(page, "pf-added")
    assert "Compared with the deployed v1: 2 added, 0 changed, 0 removed." == page.inner_text("#compare")
    page.click("#save-draft")
    page.wait_for_selector("#modeler-status:has-text('Draft saved')")
    page.click("#deploy")
    page.wait_for_selector("#modeler-status a.deployed")
    assert page.inner_text("#modeler-status a.deployed") == "complaint_to_improvement v2 deployed"
    page.screenshot(path=str(ARTIFACTS / "w22-modeler-deployed-1366.png"), full_page=True)
    instance = runtime.start("complaint_to_improvement", COMPLAINT, Actor.system("test"))
    assert instance.version == 2
    new_task = next(t for t in instance.tasks if t.spec_id == task_id)
    assert new_task.name == "Check the packaging" and new_task.groups == ["production"] and new_task.due_at
    assert 'name="escalation.grace" value="P2D"' in runtime.definition_xml("complaint_to_improvement", 2)
    [form_field] = runtime.task(new_task.id, LEAD).form
    assert (form_field["id"], form_field["label"], form_field["type"], form_field["required"]) == (
        "packaging_ok", "Packaging is fine", "boolean", True)
    phone = _page(chromium, errors, 390, 844)
    _sign_in(phone, base, "lena.lead")
    phone.goto(f"{base}/processes/complaint_to_improvement/edit")
    phone.wait_for_selector(".pf-modeler.pf-ready")
    phone.screenshot(path=str(ARTIFACTS / "w23-modeler-390.png"), full_page=True)
    assert not [e for e in errors if "status of 422" not in e], errors  # a refused deploy answers 422


def test_dmn_editor_edits_a_rule_deploys_and_the_test_returns_the_new_result(library_server, chromium):
    base, runtime = library_server
    errors: list[str] = []
    page = _page(chromium, errors)
    _sign_in(page, base, "lena.lead")
    page.goto(f"{base}/decisions/complaint_severity/edit")
    page.wait_for_selector("#dmn-modeler.pf-ready")
    page.fill("#try-decision [data-variable='safety_issue']", "false")
    page.fill("#try-decision [data-variable='repeat_customer']", "false")
    page.fill("#try-decision [data-variable='customer_impact']", "unusable")
    page.fill("#try-decision [data-variable='affected_units']", "1")
    page.click("#try-decision button[type=submit]")
    page.wait_for_selector("#decision-result.ok")
    assert '"major"' in page.inner_text("#decision-result")
    # rule 3 ("unusable") now says critical
    cell = page.locator('td[data-element-id="rule_3_output"] .content-editable')
    cell.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('"critical"')
    page.click("h1")  # leave the cell
    page.screenshot(path=str(ARTIFACTS / "w30-dmn-editor-1366.png"), full_page=True)
    page.click("#deploy")
    page.wait_for_selector("#modeler-status.ok")
    assert "complaint_severity v2 deployed" in page.inner_text("#modeler-status")
    page.click("#try-decision button[type=submit]")
    page.wait_for_selector("#decision-result:has-text('critical')")
    page.screenshot(path=str(ARTIFACTS / "w31-dmn-tested-1366.png"), full_page=True)
    assert runtime.evaluate_decision("complaint_severity", {"safety_issue": False, "repeat_customer": False,
                                                            "customer_impact": "unusable", "affected_units": 1},
                                     Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")) == [
        {"severity": "critical"}]
    # dmn-js's bundle logs Inferno's "development build" notice; anything else is a failure
    assert not [e for e in errors if "build of Inferno" not in e], errors


def test_waiting_timer_is_marked_with_its_due_time(library_server, chromium):
    base, runtime = library_server
    runtime.deploy_paths([Path(__file__).parent / "models" / "wb_timer_boundary.bpmn"])
    instance = runtime.start("wb_timer_boundary", {}, Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead"))
    errors: list[str] = []
    page = _page(chromium, errors)
    _sign_in(page, base, "lena.lead")
    page.goto(f"{base}/instances/{instance.id}")
    page.wait_for_selector(".pf-diagram.pf-ready")
    assert _marked(page, "pf-waiting") == {"Timer_Late"}
    assert _marked(page, "pf-active") == {"Task_Answer"}
    assert "StartEvent_1" in _marked(page, "pf-completed")
    assert page.locator('.djs-overlays[data-container-id="Timer_Late"] .pf-due').count() == 1
    page.click('.djs-element[data-element-id="Timer_Late"]')
    assert "timer" in page.inner_text(".pf-details")
    page.screenshot(path=str(ARTIFACTS / "w04-instance-timer-1366.png"), full_page=True)
    assert not errors, errors


def test_heat_map_is_an_overlay_on_the_viewer(library_server, chromium):
    base, runtime = library_server
    start = datetime.now(UTC) - timedelta(days=2)
    with time_machine.travel(start, tick=False):
        instance = runtime.start("complaint_to_improvement", COMPLAINT, Actor.system("test"))
    with time_machine.travel(start + timedelta(hours=6), tick=False):
        instance = runtime.complete(_open_task(instance.tasks, "acknowledge").id, SERVICE, {
            "acknowledgement_message": "Thank you, we are on it.", "acknowledgement_channel": "email"})
    with time_machine.travel(start + timedelta(hours=8), tick=False):
        runtime.complete(_open_task(instance.tasks, "triage").id, LEAD, {
            "category": "product_quality", "customer_impact": "degraded", "affected_units": 2,
            "triage_notes": "Motor."})
    refresh_facts(runtime.db)
    errors: list[str] = []
    for width, height, name in ((1366, 768, "w40-heat-map-1366.png"), (390, 844, "w41-heat-map-390.png")):
        page = _page(chromium, errors, width, height)
        _sign_in(page, base, "lena.lead")
        page.goto(f"{base}/dashboard")
        page.wait_for_selector("#heat-map.pf-ready")
        page.locator("#heat-map").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    assert page.locator('.djs-overlays[data-container-id="acknowledge"] .pf-heat').count() == 1
    assert page.locator('.djs-element.pf-heat-4[data-element-id="acknowledge"]').count() == 1  # slowest: darkest
    assert not errors, errors


def test_modeler_edits_call_activity_mappings(library_server, chromium):
    base, runtime = library_server
    errors: list[str] = []
    page = _page(chromium, errors)
    _sign_in(page, base, "lena.lead")
    page.goto(f"{base}/processes/complaint_to_improvement/edit")
    page.wait_for_selector(".pf-modeler.pf-ready")
    page.click('.djs-element[data-element-id="improve"]')
    assert page.input_value("#prop-calledElement") == "rca_and_corrective_action"
    assert [page.input_value(f"#map-{i}-source") for i in (0, 1)] == ["*", "*"]  # in and out: all variables
    page.click("#add-in-mapping")
    page.fill("#map-2-source", "reference")
    page.press("#map-2-source", "Tab")
    page.fill("#map-2-target", "complaint_reference")
    page.press("#map-2-target", "Tab")
    page.click("#add-executionlistener")  # a script listener on the call activity's end
    page.select_option("#listener-0-event", "end")
    page.fill("#listener-0-script", "improvement_done = True")
    page.press("#listener-0-script", "Tab")
    page.screenshot(path=str(ARTIFACTS / "w24-modeler-call-activity-1366.png"), full_page=True)
    page.click("#deploy")
    page.wait_for_selector("#modeler-status a.deployed")
    xml = runtime.definition_xml("complaint_to_improvement", 2)
    assert '<camunda:in source="reference" target="complaint_reference"' in xml
    assert '<camunda:executionListener event="end">' in xml
    assert '<camunda:script scriptFormat="python">improvement_done = True</camunda:script>' in xml
    assert not errors, errors
