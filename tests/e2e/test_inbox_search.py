"""Browser test of the inbox's search and filter bar on SQLite and PostgreSQL: customer service
finds a complaint by the customer's name and by its reference (the case search index), narrows the
list by due date and priority, clears the filters; at 1366 px and at 390 px (the filter bar wraps
into two columns, each task becomes a labelled card). Screenshots: test-artifacts/inbox-search-*.png."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import clock
from engine.accounts import save_user
from engine.runtime import Runtime
from engine.views import Actor
from tests.conftest import PROCESSES, serving, skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM
from web import create_app

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-9"
CUSTOMERS = (("C-2026-000101", "Greta Gruber", "Espresso machine EM-5"),
             ("C-2026-000102", "Hans Huber", "Kettle K2"),
             ("C-2026-000103", "Ines Isler", "Toaster T1"))


@pytest.fixture
def inbox_server(db, tmp_path):
    runtime = Runtime(db)
    runtime.deploy_paths([PROCESSES])
    save_user(db, "rita.service", "employee", password=PASSWORD, groups=["customer_service"])
    lead = Actor("lena.lead", frozenset({"quality_lead"}), "quality_lead")
    for reference, name, product in CUSTOMERS:
        runtime.start("complaint_to_improvement", {
            "reference": reference, "customer_name": name, "customer_email": "c@example.com", "product": product,
            "description": "It broke after two days of normal use.", "channel": "web"},
            Actor.system("test"), business_key=reference)
    overdue = next(t for t in runtime.tasks(lead, q="hans huber"))
    runtime.set_due_date(overdue.id, lead, (clock.now() - timedelta(hours=2)).isoformat())
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "browser-test", "INSTANCE_DIR": str(tmp_path)})
    with serving(app) as base:
        yield base, db.dialect


def _rows(page) -> list[str]:
    return [r.inner_text() for r in page.locator("table.tasks tbody tr .case-ref").all()]


def test_search_and_filter_the_inbox(inbox_server):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, dialect = inbox_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for width, height in ((1366, 900), (390, 844)):
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{base}/login")
            page.fill("#username", "rita.service")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{base}/inbox")
            assert "My groups" in page.inner_text(".tabs a[aria-current=page]")
            assert sorted(_rows(page)) == [c[0] for c in CUSTOMERS]
            shot = f"inbox-search-{dialect}-{width}"
            page.screenshot(path=str(ARTIFACTS / f"{shot}-1-all.png"), full_page=True)

            page.fill("#q", "greta gru")  # part of a customer's name, any case
            page.click("form.filter button[type=submit]")
            assert _rows(page) == ["C-2026-000101"]
            row = page.locator("table.tasks tbody tr").first
            assert row.locator(".case-title").inner_text() == "Greta Gruber"
            assert "Product concerned: Espresso machine EM-5" in row.locator(".case-summary").inner_text()
            page.screenshot(path=str(ARTIFACTS / f"{shot}-2-by-name.png"), full_page=True)

            page.fill("#q", "000103")  # part of a reference
            page.click("form.filter button[type=submit]")
            assert _rows(page) == ["C-2026-000103"]

            page.fill("#q", "")
            page.select_option("#due", "overdue")
            page.click("form.filter button[type=submit]")
            assert _rows(page) == ["C-2026-000102"]
            assert page.locator("table.tasks tbody tr .badge.overdue").count() == 1
            page.screenshot(path=str(ARTIFACTS / f"{shot}-3-overdue.png"), full_page=True)

            page.select_option("#due", "")
            page.select_option("#priority", "70")
            page.click("form.filter button[type=submit]")
            assert "No tasks match these filters." in page.inner_text("main")
            page.click("text=Clear filters")
            assert sorted(_rows(page)) == [c[0] for c in CUSTOMERS]
            if width == 390:  # nothing wider than the phone: the bar wraps, rows become cards
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.close()
        browser.close()
