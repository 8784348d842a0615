"""Browser test of the Users page (admins), on SQLite and PostgreSQL: add a user with a mistake
(the error summary links to the field), fix it, change role and groups, see the user's API token,
revoke it, deactivate the user (their open browser is signed out). Screenshots at 1366 and 390 px
go to test-artifacts/users-*.png."""

from __future__ import annotations

import pytest

from engine import directory
from engine.accounts import save_user
from engine.credentials import SignInLimits, sign_in
from engine.runtime import Runtime
from tests.conftest import serving, skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM
from web import create_app

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-9"


@pytest.fixture
def admin_server(db, tmp_path):
    save_user(db, "ada.admin", "admin", password=PASSWORD)
    save_user(db, "rita.service", "employee", password=PASSWORD, groups=["customer_service"], email="rita@example.com")
    app = create_app({"RUNTIME": Runtime(db), "DATABASE": db, "SECRET_KEY": "browser-test",
                      "INSTANCE_DIR": str(tmp_path)})
    with serving(app) as base:
        yield base, db


def _sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_users_page(admin_server):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, db = admin_server
    credential = sign_in(db, "127.0.0.1", "rita.service", PASSWORD, SignInLimits())
    directory.issue_token(db, credential)
    ARTIFACTS.mkdir(exist_ok=True)
    backend = db.dialect
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        rita = browser.new_page(viewport={"width": 1366, "height": 900})
        _sign_in(rita, base, "rita.service")
        assert rita.url.endswith("/inbox")

        page = browser.new_page(viewport={"width": 1366, "height": 900})
        _sign_in(page, base, "ada.admin")
        page.click("header nav >> text=Users")
        assert page.url.endswith("/admin/users")
        page.fill("#u_username", "pia.production")
        page.select_option("#u_role", "employee")
        page.fill("#u_groups", "production, purchasing")
        page.fill("#u_email", "pia@example.com")
        page.fill("#u_password", "short")
        page.eval_on_selector("form.form-grid", "f => f.noValidate = true")  # let the server judge it
        page.click("form.form-grid button[type=submit]")
        summary = page.locator(".error-summary")
        assert "passwords need at least 8 characters" in summary.inner_text()
        page.screenshot(path=str(ARTIFACTS / f"users-01-add-error-{backend}.png"), full_page=True)
        summary.locator("a[href='#u_password']").click()
        assert page.evaluate("document.activeElement.id") == "u_password"
        page.fill("#u_password", "long-enough-1")
        page.click("form.form-grid button[type=submit]")
        assert page.url.endswith("/admin/users/pia.production")
        assert "Created user pia.production" in page.inner_text(".flash")

        page.select_option("#u_role", "quality_lead")
        page.fill("#u_groups", "production")
        page.click("text=Save")
        assert "Saved pia.production" in page.inner_text(".flash")
        assert page.input_value("#u_groups") == "production"

        page.goto(f"{base}/admin/users/rita.service")
        tokens = page.locator("table.tokens tbody tr")
        assert tokens.count() == 1 and "valid" in tokens.first.inner_text()
        page.screenshot(path=str(ARTIFACTS / f"users-02-user-{backend}.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.querySelector('main').scrollWidth") <= 390  # no sideways scrolling
        page.screenshot(path=str(ARTIFACTS / f"users-03-user-390-{backend}.png"), full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})
        tokens.first.locator("button", has_text="Revoke").click()
        assert "Revoked API token" in page.inner_text(".flash")
        assert "revoked" in page.locator("table.tokens tbody tr").first.inner_text()

        page.click("button:has-text('Deactivate rita.service')")
        assert "Deactivated rita.service" in page.inner_text(".flash")
        rita.goto(f"{base}/inbox")
        assert "/login" in rita.url  # her open browser is signed out
        page.goto(f"{base}/admin/users")
        row = page.locator("table.users tr", has_text="rita.service")
        assert "deactivated" in row.inner_text()
        page.screenshot(path=str(ARTIFACTS / f"users-04-list-{backend}.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / f"users-05-list-390-{backend}.png"), full_page=True)
        browser.close()
