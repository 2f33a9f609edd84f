"""What an auditor does, in Debian's Chromium: filters the audit trail, presses Export CSV (the filters as they are
on the page now, through htmx), follows the job to its download; then verifies the chain. Screenshots in
var/screenshots/. Tasks run inline here (eager); tests/ops/test_exports.py runs them on a real worker."""
import csv
import io
from pathlib import Path

import pytest

from portal.services import Actor, audit_record
from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(live_server, make_staff, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    make_staff("auditor", "audrey")
    for i in range(3):
        audit_record(action="test.browser", actor=Actor.system("browser"), target_id=f"=SUM({i})")
    audit_record(action="other.thing", actor=Actor.system("browser"))
    return live_server.url


@pytest.fixture
def browser(portal):
    with chromium() as browser:
        yield browser


def test_an_auditor_exports_the_filtered_trail_and_verifies_the_chain(browser, portal):
    page = browser.new_context(accept_downloads=True).new_page()
    sign_in(page, portal, "audrey")
    page.goto(f"{portal}/audit/")
    page.fill("input[name=action]", "test.browser")
    page.press("input[name=action]", "Enter")
    page.wait_for_url("**/audit/?action=test.browser*")
    page.click("button:has-text('Export CSV')")
    page.wait_for_url("**/exports/*/")
    page.wait_for_selector("text=Download")
    assert "action=test.browser" in page.inner_text("hgroup")
    page.screenshot(path=str(SHOTS / "export-1-ready.png"), full_page=True)
    with page.expect_download() as download:
        page.click("a[role=button]:has-text('Download')")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["action"] for r in rows] == ["test.browser"] * 3 and rows[0]["target_id"] == "'=SUM(0)"
    page.goto(f"{portal}/exports/")
    assert "Ready" in page.inner_text("#export-rows")
    page.screenshot(path=str(SHOTS / "export-2-list.png"), full_page=True)
    page.goto(f"{portal}/audit/verify/")
    page.click("button:has-text('Re-verify everything')")
    page.wait_for_selector("text=Intact")
    page.screenshot(path=str(SHOTS / "verify-1-full.png"), full_page=True)
    page.goto(f"{portal}/audit/verify/")
    page.click("button:has-text('Verify new events')")
    page.wait_for_selector("text=Intact")
    page.screenshot(path=str(SHOTS / "verify-2-incremental.png"), full_page=True)
