"""An admin engages the emergency stop in Chromium: the confirmation, then the banner on every staff page, with no
console error (the CSP allows nothing inline). Screenshots go to var/screenshots/."""
import pytest

from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser


def test_admin_engages_the_stop_and_the_banner_follows(live_server, portal_on_emulator, make_staff):
    make_staff("admin", "ada")
    with chromium() as browser:
        page = browser.new_context(ignore_https_errors=True).new_page()
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        sign_in(page, live_server.url, "ada")
        page.goto(f"{live_server.url}/identities/")
        page.click("text=Emergency stop…")
        page.click("text=Engage the emergency stop…")
        page.fill("textarea[name=reason]", "Worker host compromised")
        page.check("input[name=confirm]")
        page.screenshot(path=str(SHOTS / "estop-1-confirm.png"), full_page=True)
        page.click("button:has-text('Stop every exchange now')")
        page.wait_for_selector(".estop-banner")
        page.screenshot(path=str(SHOTS / "estop-2-stopped.png"), full_page=True)
        for path in ("/dashboard/", "/token-tests/"):
            page.goto(f"{live_server.url}{path}")
            assert "Worker host compromised" in page.inner_text(".estop-banner")
        assert errors == []
