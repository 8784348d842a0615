"""Accessibility of the main pages in real Chromium, and the dashboard's look.

axe-core (vendored by the axe-playwright-python package, a test dependency) checks the sign-in page,
/complain (empty and with errors), the inbox, a task page (with errors), the case page, the process
page, the KPI dashboard and the ISO report at 1366 and 390 px: no "serious" or "critical" violation.
The skip link leads to the main content and a form's error summary links to its fields. Screenshots
of the dashboard go to test-artifacts/ (looked at by the people who change it)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from engine.kpis import refresh_facts
from engine.views import Actor
from storage.kpi_facts import ActionFact, ComplaintFact, TaskFact
from tests.conftest import skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, _sign_in, library_server  # noqa: F401

WIDTHS = (1366, 390)
BLOCKING = ("serious", "critical")
CATEGORIES = ["product_quality", "delivery", "service", "billing", "documentation", "safety", "other"]
CAUSES = ["Carrier leaves parcels outside", "Motor insulation class too low", "Label printer misaligned",
          "Invoice template shows old prices", "Seal supplier changed material"]
STEPS = [("acknowledge", "Acknowledge the customer"), ("triage", "Triage the complaint"),
         ("rca_analyse", "Find the root cause"), ("rca_do_action", "Carry out the corrective action")]


def _history(db, now: datetime) -> None:
    """Half a year of complaint facts (this period and the previous one) for charts worth looking at."""
    rng = random.Random(7)
    facts, actions, tasks = [], [], []
    for i in range(160):
        received = now - timedelta(days=rng.uniform(1, 180))
        closed = received + timedelta(days=rng.uniform(2, 30))
        closed = closed if closed < now and rng.random() < 0.8 else None
        first = rng.random() < 0.7
        iid = f"hist{i:04d}"
        facts.append({
            "instance_id": iid, "process_key": "complaint_to_improvement", "kind": "complaint",
            "reference": f"C-2026-{i:06d}", "instance_status": "completed" if closed else "running",
            "status": "closed" if closed else "in_progress", "received_at": received,
            "acknowledged_at": received + timedelta(hours=rng.uniform(1, 30)), "ack_seconds": None,
            "closed_at": closed, "close_seconds": (closed - received).total_seconds() if closed else None,
            "category": rng.choice(CATEGORIES), "severity": rng.choice(["critical", "major", "minor"]),
            "product": f"Grinder CG-{rng.randint(1, 5)}00", "customer": f"Customer {rng.randint(1, 60)}",
            "valid": True, "rca_loops": 0 if first else 1, "effective_first_check": first if closed else None,
            "effective": True if closed else None, "root_cause": rng.choice(CAUSES),
            "csat": rng.randint(2, 5) if closed else None, "nps": rng.randint(3, 10) if closed else None})
        facts[-1]["ack_seconds"] = (facts[-1]["acknowledged_at"] - received).total_seconds()
        due = (received + timedelta(days=14)).date()
        actions.append({"instance_id": iid, "action_id": "1-1", "round": 1, "owner": "ann.owner",
                        "what": "Fix the cause", "due_on": due,
                        "done_on": due - timedelta(days=rng.randint(-5, 5)) if closed else None})
        spec, name = STEPS[i % len(STEPS)]
        hours = rng.uniform(1, 60) * (i % len(STEPS) + 1)
        tasks.append({"task_id": f"t{iid}", "instance_id": iid, "process_key": "complaint_to_improvement",
                      "spec_id": spec, "name": name, "state": "completed", "created_at": received,
                      "completed_at": received + timedelta(hours=hours), "seconds": hours * 3600})
    with db.write() as s:
        s.execute(insert(ComplaintFact), facts)
        s.execute(insert(ActionFact), actions)
        s.execute(insert(TaskFact), tasks)


@pytest.fixture
def case(library_server):  # noqa: F811
    """A complaint acknowledged and waiting for triage, and KPI facts of half a year."""
    base, runtime = library_server
    service = Actor("carl.service", frozenset({"customer_service", "employee"}), "employee")
    instance = runtime.start("complaint_to_improvement", {
        "reference": "C-2026-000901", "customer_name": "Maria Kunde", "customer_email": "maria@example.org",
        "product": "Coffee grinder CG-200", "description": "Stopped after two days and smells burnt.",
        "effectiveness_wait": "P30D"}, Actor.system("test"))
    ack = next(t for t in instance.tasks if t.spec_id == "acknowledge")
    runtime.complete(ack.id, service, {"acknowledgement_message": "Thank you, we are on it.",
                                       "acknowledgement_channel": "email"})
    _history(runtime.db, datetime.now(UTC))  # before the first refresh, which builds the KPI rollups from all facts
    refresh_facts(runtime.db)
    triage = next(t for t in runtime.instance(instance.id).tasks if t.spec_id == "triage")
    return base, runtime, instance.id, triage.id


def _serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
            for v in violations if v["impact"] in BLOCKING]


def _browser(p):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    return p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def test_main_pages_have_no_serious_axe_violation(case):
    from playwright.sync_api import sync_playwright

    base, _runtime, instance_id, triage_id = case
    found: dict[str, list[str]] = {}
    with sync_playwright() as p:
        browser = _browser(p)
        for width in WIDTHS:
            page = browser.new_context(viewport={"width": width, "height": 900}).new_page()

            def check(name: str, page=page, width=width) -> None:
                page.wait_for_load_state("networkidle")
                problems = _serious(page)
                if problems:
                    found[f"{name} @{width}"] = problems

            page.goto(f"{base}/login")
            check("sign-in")
            page.goto(f"{base}/complain")
            check("complain")
            page.click("button[type=submit]")  # nothing filled in: the error summary
            check("complain with errors")
            _sign_in(page, base, "lena.lead")
            page.goto(f"{base}/inbox?tab=groups")
            check("inbox")
            page.goto(f"{base}/tasks/{triage_id}")
            check("task")
            page.click("form.taskform button[type=submit]")
            check("task with errors")
            page.goto(f"{base}/instances/{instance_id}")
            page.wait_for_selector(".pf-diagram.pf-ready")
            check("case")
            page.goto(f"{base}/processes/complaint_to_improvement")
            page.wait_for_selector(".pf-diagram.pf-ready")
            check("process")
            page.goto(f"{base}/dashboard")
            check("dashboard")
            page.goto(f"{base}/reports/iso9001")
            check("ISO report")
            page.context.close()
        browser.close()
    assert not found, "\n".join(f"{page}: {p}" for page, problems in found.items() for p in problems)


def test_skip_link_and_error_summary(case):
    from playwright.sync_api import sync_playwright

    base, *_ = case
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{base}/complain")
        page.keyboard.press("Tab")  # the first stop of every page
        assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"

        page.fill("#c_customer_name", "Ann Example")
        page.fill("#c_description", "Broken")
        page.click("button[type=submit]")
        summary = page.locator("#error-summary")
        assert summary.get_attribute("role") == "alert"
        links = summary.locator("a")
        targets = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert "#c_customer_email" in targets and "#c_description" in targets and "#c_customer_name" not in targets
        summary.locator("a[href='#c_description']").click()
        assert page.evaluate("document.activeElement.id") == "c_description"
        described = page.get_attribute("#c_description", "aria-describedby")
        assert "must be at least 10 characters" in page.inner_text(f"#{described}")
        page.screenshot(path=str(ARTIFACTS / "a11y-complain-errors-390.png"), full_page=True)
        browser.close()


def test_dashboard_screenshots(case):
    """The dashboard at a glance at both widths: tiles in a row (two columns on a phone), charts side by
    side on a laptop, stacked on a phone, and the page far shorter than the long form."""
    from playwright.sync_api import sync_playwright

    base, *_ = case
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        for width in WIDTHS:
            page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
            _sign_in(page, base, "lena.lead")
            page.goto(f"{base}/dashboard")
            page.wait_for_selector(".pf-diagram.pf-ready")
            tiles = page.locator("li.tile")
            assert tiles.count() == 6
            tops = {round(tiles.nth(i).bounding_box()["y"]) for i in range(6)}
            assert len(tops) == (1 if width == 1366 else 3), tops  # one row; three rows of two
            assert "Complaints received" in tiles.nth(0).inner_text()
            assert "vs" in tiles.nth(0).inner_text()  # there is a previous period to compare with
            cards = page.locator(".charts > .card")
            lefts = {round(cards.nth(i).bounding_box()["x"]) for i in range(cards.count())}
            assert len(lefts) == (2 if width == 1366 else 1), lefts
            assert "Product quality (defect, damage, wrong part)" in page.text_content("#h-pareto ~ details")
            # nothing wider than the screen (the filter form's second column once ran off a phone's edge)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height < (3600 if width == 1366 else 7000), height  # the one long column was ~5,200 px
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}.png"), full_page=True)
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}-top.png"))
            page.locator("#h-sat").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}-satisfaction.png"))
            page.emulate_media(media="print")
            assert not page.locator("header.top").is_visible() and not page.locator("form.filter").is_visible()
            page.emulate_media(media="screen")
            page.goto(f"{base}/reports/iso9001")
            page.emulate_media(media="print")
            assert not page.locator("header.top").is_visible() and page.locator("#s102").is_visible()
            page.screenshot(path=str(ARTIFACTS / f"iso-report-print-{width}.png"), full_page=True,
                            clip={"x": 0, "y": 0, "width": width, "height": 1800})  # the first pages
            page.context.close()
        browser.close()
