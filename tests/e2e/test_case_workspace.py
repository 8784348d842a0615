"""Browser test of the case workspace at 1366 px: a customer files a complaint and reloads the
thank-you page (one case, same reference); customer service lands on "My groups", finds the case by
the customer's name with its reference, product and process name, and reads the case panel as
labelled values. Screenshots go to test-artifacts/case-*.png."""

from __future__ import annotations

import pytest

from engine.accounts import save_user
from tests.conftest import skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, fill_complaint, server  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def test_file_reload_find_and_read_the_case(server):  # noqa: F811
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, runtime = server
    save_user(runtime.db, "lena.lead", "quality_lead", password="correct-horse-9", groups=["quality_lead"])
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        fill_complaint(page, base)
        page.click("button[type=submit]")
        assert page.url.endswith("/complain/thanks")
        reference = page.inner_text("#reference")
        page.reload()  # Post/Redirect/Get: the reload shows the page again and files nothing
        assert page.inner_text("#reference") == reference
        assert [r["business_key"] for r in runtime.instances()] == [reference]
        page.screenshot(path=str(ARTIFACTS / "case-01-thanks-after-reload.png"), full_page=True)

        page.goto(f"{base}/login")
        page.fill("#username", "rita.service")
        page.fill("#password", "correct-horse-9")
        page.click("button[type=submit]")
        page.goto(f"{base}/inbox")
        assert "My groups" in page.inner_text(".tabs a[aria-current=page]")  # Mine is empty
        page.fill("#q", "gruber")
        page.click("form.filter button[type=submit]")
        row = page.locator("table.tasks tbody tr").first
        assert page.locator("table.tasks tbody tr").count() == 1
        assert row.locator(".case-ref").inner_text() == reference
        assert row.locator(".case-title").inner_text() == "Greta Gruber"  # the process's case.title
        assert "Product concerned: Espresso machine EM-5" in row.locator(".case-summary").inner_text()
        assert "Customer complaint to improvement" in row.inner_text()
        assert "complaint_to_improvement" not in row.inner_text()
        page.screenshot(path=str(ARTIFACTS / "case-02-inbox-search.png"), full_page=True)

        row.locator("a.name").click()
        panel = page.locator("dl.case-values")
        assert "Customer\nGreta Gruber" in panel.inner_text() and "Your name" not in panel.inner_text()
        assert "customer_name" not in panel.inner_text()
        page.screenshot(path=str(ARTIFACTS / "case-03-task-case-panel.png"), full_page=True)
        page.goto(base + page.locator("aside.side-col a").first.get_attribute("href"))
        assert page.locator("details.raw-data").count() == 0  # an employee sees no raw JSON
        page.screenshot(path=str(ARTIFACTS / "case-04-instance-employee.png"), full_page=True)
        browser.close()
