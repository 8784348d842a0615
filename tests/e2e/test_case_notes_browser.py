"""Browser test of comments and attachments (SQLite and PostgreSQL): a customer files a complaint on
/complain with a photo; customer service opens the case page, finds the photo, comments, attaches an
8D report and downloads it; a program disguised as a PDF is refused; an employee of another group
gets 404 on the case and its files; at 390 px the case's tasks table fits the screen (no column cut
off). Screenshots at 1366 and 390 px go to test-artifacts/."""

from __future__ import annotations

import pytest

from tests.conftest import skip_or_fail
from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, _sign_in, fill_complaint, library_site
from tests.fixtures.sample_files import EXE, PDF, png

pytestmark = pytest.mark.browser


@pytest.fixture
def case_server(db, runtime, tmp_path):
    users = [("rita.service", "employee", ["customer_service"]), ("otto.buyer", "employee", ["purchasing"])]
    with library_site(db, runtime, tmp_path, users) as base:
        yield base, runtime


def _shots(page, name: str, backend: str) -> None:
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"notes-{name}-{width}-{backend}.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def _past_the_right_edge(page, selector: str) -> list[str]:
    """The element `selector` and its descendants that reach past the viewport's right edge (clipped,
    or to be scrolled to sideways), as tag and text."""
    return page.evaluate("""selector => {
        const width = document.documentElement.clientWidth, table = document.querySelector(selector);
        return [table, ...table.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > width + 0.5)
            .map(e => e.tagName + ': ' + e.textContent.trim().slice(0, 40)); }""", selector)


def test_file_with_photo_comment_attach_and_download(case_server, db):
    if not CHROMIUM.exists():
        skip_or_fail("Chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    base, runtime = case_server
    backend = db.dialect
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        fill_complaint(page, base, "The steam wand leaks after a week of normal use.")
        page.set_input_files("#c_attachments", files=[
            {"name": "leaking-wand.png", "mimeType": "image/png", "buffer": png(64, 48)}])
        _shots(page, "complain-form", backend)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/complain/thanks")
        [row] = runtime.instances()
        case_url = f"{base}/instances/{row['id']}"

        _sign_in(page, base, "rita.service")
        page.goto(case_url)
        files = page.locator("ul.attachments")
        assert "leaking-wand.png" in files.inner_text() and "the customer" in files.inner_text()

        page.fill("#comment_body", "Called Ms Gruber: she will send the machine in.")
        page.click("form[action$='/comments'] button[type=submit]")
        page.wait_for_url(f"{case_url}#comments")
        assert "Called Ms Gruber" in page.locator("ul.comments").inner_text()
        assert "commented" in page.locator("ol.timeline").inner_text()

        page.set_input_files("#attach_file", files=[
            {"name": "8D-report.pdf", "mimeType": "application/pdf", "buffer": PDF}])
        page.click("form[action$='/attachments'] button[type=submit]")
        page.wait_for_url(f"{case_url}#attachments")
        assert "8D-report.pdf" in page.locator("ul.attachments").inner_text()
        with page.expect_download() as download_info:
            page.click("ul.attachments a:has-text('8D-report.pdf')")
        download = download_info.value
        assert download.suggested_filename == "8D-report.pdf"
        with open(download.path(), "rb") as fh:
            assert fh.read() == PDF

        page.set_input_files("#attach_file", files=[
            {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": EXE}])
        page.click("form[action$='/attachments'] button[type=submit]")
        assert "Not attached" in page.locator(".flash.error").inner_text()
        assert "invoice.pdf" not in page.locator("ul.attachments").inner_text()
        _shots(page, "case-page", backend)
        # on a phone the case's tasks are cards of labelled lines: the due date is not cut off
        page.set_viewport_size({"width": 390, "height": 900})
        tasks = "aside.side-col table.list"
        assert page.locator(f"{tasks} tbody tr").count() >= 1 and "Due" in page.locator(tasks).inner_text()
        assert _past_the_right_edge(page, tasks) == []
        page.set_viewport_size({"width": 1366, "height": 900})
        photo = page.locator("ul.attachments a:has-text('leaking-wand.png')").get_attribute("href")

        # an employee outside the case: the page and the files do not exist for him
        page.context.clear_cookies()
        _sign_in(page, base, "otto.buyer")
        assert page.goto(case_url).status == 404
        assert page.evaluate("url => fetch(url).then(r => r.status)", base + photo) == 404
        browser.close()
