"""Browser test of the customer side and the staff notifications, on SQLite and PostgreSQL: a
customer files a complaint and looks it up on /status from the thank-you page's link; customer
service registers a complaint that came by phone (the start form plus the channel), reads the
acknowledgement template with the greeting in place, sees the bell's unread count, opens the
notifications page and marks them read. Screenshots at 1366 and 390 px go to
test-artifacts/customer-*.png."""

from __future__ import annotations

import pytest

from engine.accounts import save_user
from engine.notifications import notify_task_events
from engine.runtime import Runtime
from tests.conftest import PROCESSES, serving, skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, fill_complaint
from web import create_app

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-9"


@pytest.fixture
def site(db, tmp_path):
    runtime = Runtime(db)
    runtime.deploy_paths([PROCESSES])
    save_user(db, "carl.service", "employee", password=PASSWORD, email="carl@example.com",
              groups=["customer_service", "employee"])
    app = create_app({"RUNTIME": runtime, "DATABASE": db, "SECRET_KEY": "browser-test", "INSTANCE_DIR": str(tmp_path)})
    with serving(app) as base:
        yield base, runtime, db.dialect


def _shot(page, name: str, dialect: str) -> None:
    if dialect == "sqlite":  # one set of pictures is enough
        page.screenshot(path=str(ARTIFACTS / f"customer-{name}.png"), full_page=True)


def test_customer_status_staff_intake_and_notifications(site):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, runtime, dialect = site
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for width in (1366, 390):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            # -- the customer files a complaint and checks its status
            fill_complaint(page, base)
            page.click("button[type=submit]")
            reference = page.inner_text("#reference")
            assert "What happens next" in page.inner_text("main")
            _shot(page, f"01-thanks-{width}", dialect)
            page.click("#status-link")
            assert page.input_value("#s_reference") == reference
            page.fill("#s_email", "someone.else@example.com")
            page.click("form button[type=submit]")
            assert "We found no complaint" in page.inner_text("#status-error")
            page.fill("#s_email", "Greta@example.com")
            page.click("form button[type=submit]")
            assert page.inner_text("#status-value") == "Received"
            assert "contact you personally within one working day" in page.inner_text("#status-stage")
            _shot(page, f"02-status-{width}", dialect)

            # -- customer service: the bell, a phone complaint, the notifications
            notify_task_events(runtime.db)  # the scheduler's pass: "a new task for your group"
            page.goto(f"{base}/login")
            page.fill("#username", "carl.service")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/inbox*")
            unread = int(page.inner_text("#bell-count"))
            assert unread >= 1
            if width == 390:  # a phone: the header's links are behind its menu button
                page.click("#menu-toggle")
            page.click("#main-nav >> text=Register a complaint")
            page.select_option("#f_channel", "phone")
            page.fill("#f_customer_name", "Bea Caller")
            page.fill("#f_customer_email", "bea@example.com")
            page.fill("#f_product", "Toaster T-3")
            page.fill("#f_description", "Called in: the casing gets very hot on the left side.")
            _shot(page, f"03-register-{width}", dialect)
            assert page.get_attribute("#f_customer_email", "type") == "email"
            assert page.inner_text("label[for=f_customer_name]").startswith("Customer's name")  # staff wording
            page.click("form.card button[type=submit]")
            assert "/tasks/" in page.url and "registered (Phone)" in page.inner_text(".flash")
            phone_reference = page.inner_text(".flash").split()[1]
            message = page.locator("textarea#f_acknowledgement_message")
            assert message.input_value().startswith("Dear Bea Caller,\n\n")  # the greeting is in place
            assert "exactly as they receive it" in page.inner_text("label[for=f_acknowledgement_message]")
            _shot(page, f"04-acknowledge-{width}", dialect)
            channels = {i["business_key"]: runtime.instance(i["id"]).data["channel"] for i in runtime.instances()}
            assert (channels[reference], channels[phone_reference]) == ("web", "phone")

            notify_task_events(runtime.db)
            page.goto(f"{base}/inbox")
            assert int(page.inner_text("#bell-count")) == unread + 1
            page.click("#bell")
            rows = page.locator("li.notification.unread")
            assert rows.count() == unread + 1
            assert "Acknowledge the customer" in rows.first.inner_text()
            _shot(page, f"05-notifications-{width}", dialect)
            rows.first.locator("button").click()
            assert int(page.inner_text("#bell-count")) == unread
            page.click("text=Mark all read")
            assert page.locator("#bell-count").count() == 0
            assert page.locator("li.notification.unread").count() == 0
            _shot(page, f"06-notifications-read-{width}", dialect)
            context.close()
        browser.close()
