"""Browser test (SQLite and PostgreSQL) of the header on a phone and on a laptop, and of the case
panel's status as a complaint moves on.

At 390 px the header is one row — brand, a Menu button, the bell, the user — and the links open
below the button (Escape closes them); at 1366 px the links are in the header and there is no
button. The case page's panel says "In progress" and the stage the customer is told, not the
"acknowledged" a process variable keeps. Screenshots: test-artifacts/header-*.png."""

from __future__ import annotations

import pytest
import time_machine

from engine import clock
from tests.conftest import skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, _sign_in, library_site
from tests.service import helpers_process_library as lib

pytestmark = pytest.mark.browser


@pytest.fixture
def site(db, runtime, tmp_path):
    users = [("lena.lead", "quality_lead", ["customer_service"]), ("rob.owner", "employee", ["production"])]
    with library_site(db, runtime, tmp_path, users) as base:
        yield base, runtime


def _complaint_in_rca(runtime) -> str:
    """A complaint past acknowledgement, triage and the first reply: its root cause is being sought."""
    with time_machine.travel(clock.now(), tick=False):
        d = lib.Driver(runtime, runtime.start("complaint_to_improvement",
                                              dict(lib.COMPLAINT, reference="C-2026-09001"), lib.INTAKE))
        d.complete("acknowledge", lib.SERVICE, lib.ack())
        d.complete("triage", lib.LEAD, lib.triage())
        d.complete("reply", lib.SERVICE, lib.reply())
        d.complete("rca_analyse", lib.LEAD, lib.analyse())
    assert d.open_ids() == ["rca_plan"]
    return d.id


def test_header_is_one_row_on_a_phone_and_the_panel_follows_the_case(site, db):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, runtime = site
    instance_id = _complaint_in_rca(runtime)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        # -- the customer's header on a phone: one row, the links behind Menu
        phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        phone.goto(f"{base}/complain")
        assert phone.locator("header.top").bounding_box()["height"] < 64
        assert phone.is_visible("#menu-toggle") and not phone.is_visible("#main-nav")
        phone.screenshot(path=str(ARTIFACTS / f"header-public-390-{db.dialect}.png"))

        # -- the lead's header on a phone
        _sign_in(phone, base, "lena.lead")
        header = phone.locator("header.top")
        assert header.bounding_box()["height"] < 64  # one row (it wrapped to about four)
        assert not phone.is_visible("#main-nav") and phone.get_attribute("#menu-toggle", "aria-expanded") == "false"
        for part in ("a.brand", "#menu-toggle", "#bell", ".usermenu summary"):  # side by side on that row
            box = phone.locator(part).bounding_box()
            assert box["y"] < 50 and box["x"] + box["width"] <= 390, part
        phone.screenshot(path=str(ARTIFACTS / f"header-lead-390-{db.dialect}.png"))
        phone.click("#menu-toggle")
        assert phone.get_attribute("#menu-toggle", "aria-expanded") == "true"
        links = phone.locator("#main-nav a")
        assert links.all_inner_texts() == ["Inbox", "Register a complaint", "Processes", "Instances", "KPIs"]
        assert all(b["width"] > 300 for b in (links.nth(i).bounding_box() for i in range(links.count())))  # full width
        phone.screenshot(path=str(ARTIFACTS / f"header-lead-390-menu-{db.dialect}.png"))
        phone.keyboard.press("Escape")
        assert not phone.is_visible("#main-nav")
        assert phone.evaluate("document.activeElement.id") == "menu-toggle"
        phone.click("#menu-toggle")
        phone.click("#main-nav >> text=Instances")
        phone.wait_for_url(f"{base}/instances*")

        # -- the case page on the phone: the panel says where the case stands
        phone.goto(f"{base}/instances/{instance_id}")
        assert phone.inner_text('dd[data-var="status"]') == "In progress"
        assert phone.inner_text('dd[data-var="stage"]') == ("We are finding the cause of the problem and fixing "
                                                            "it, then checking that the fix works.")
        phone.screenshot(path=str(ARTIFACTS / f"header-case-390-{db.dialect}.png"), full_page=True)
        phone.evaluate("document.querySelector('aside.side-col').scrollIntoView()")
        phone.screenshot(path=str(ARTIFACTS / f"header-case-panel-390-{db.dialect}.png"))

        # -- on a laptop the links are in the header and there is no menu button
        laptop = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        _sign_in(laptop, base, "lena.lead")
        assert not laptop.is_visible("#menu-toggle") and laptop.is_visible("#main-nav >> text=KPIs")
        assert laptop.locator("header.top").bounding_box()["height"] < 64
        laptop.goto(f"{base}/instances/{instance_id}")
        assert laptop.inner_text('dd[data-var="status"]') == "In progress"
        laptop.screenshot(path=str(ARTIFACTS / f"header-case-1366-{db.dialect}.png"))
        browser.close()
