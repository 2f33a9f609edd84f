"""In Chromium, signed in as an admin: the main staff pages and the consent landing page run under the
Content-Security-Policy with no violation and no console error, and what needs JavaScript still works (htmx polls,
the dashboard's chart is drawn, the copy button copies). Screenshots go to var/screenshots/."""
import pytest
from django.urls import reverse

from tests.conftest import PASSWORD
from tests.fixtures.browser import SHOTS, chromium

# Recorded before any page script runs (an init script is not subject to the page's CSP).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`));
"""
pytestmark = pytest.mark.browser


@pytest.fixture
def browser(live_server, pages_world, make_staff):
    make_staff("admin", "ada")
    with chromium() as browser:
        yield browser


class Watched:
    """A page whose console errors, uncaught errors and CSP violations are collected."""

    def __init__(self, context):
        context.add_init_script(RECORD_VIOLATIONS)
        self.page = context.new_page()
        self.errors = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def visit(self, url, expect_status=200):
        self.errors.clear()
        response = self.page.goto(url, wait_until="networkidle")
        assert response.status == expect_status, url
        return self

    def assert_clean(self, name):
        self.page.screenshot(path=str(SHOTS / f"csp-{name}.png"), full_page=True)
        violations = self.page.evaluate("window.__cspViolations")
        assert violations == [], f"{name}: {violations}"
        assert self.errors == [], f"{name}: {self.errors}"


def test_staff_pages_run_under_the_csp_without_violations(browser, live_server, pages_world):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    watched = Watched(context)
    page = watched.page
    watched.visit(live_server.url + reverse("portal:login")).assert_clean("login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("console:dashboard"))
    page.wait_for_load_state("networkidle")
    assert page.evaluate("Chart.getChart('chart-hours') && Chart.getChart('chart-days')")  # static/portal/dashboard.js
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False  # read from the htmx-config meta tag
    watched.assert_clean("dashboard")
    for name, url in [
        ("customers", reverse("onboarding:customer-list")),
        ("tenant-detail", reverse("onboarding:tenant-detail", args=[pages_world.tenant.pk])),
        ("tokentest-detail", reverse("exchange:tokentest-detail", args=[pages_world.test.pk])),
        ("identities", reverse("exchange:identities")),
        ("audit", reverse("portal:audit-list")),
    ]:
        watched.visit(live_server.url + url).assert_clean(name)

    # htmx under the CSP: the audit filter swaps the rows in place.
    with page.expect_response(lambda r: "/audit/" in r.url and r.request.headers.get("hx-request") == "true"):
        page.fill("input[name=action]", "consent")
        page.press("input[name=action]", "Enter")
    watched.assert_clean("audit-filtered")

    # The consent link page's copy button (static/portal/copy.js).
    watched.visit(live_server.url + reverse("onboarding:tenant-detail", args=[pages_world.tenant.pk]))
    page.click("button:has-text('Issue a consent link')")
    page.click("#copy-link")
    # The clipboard write resolves asynchronously; the button says so when it has.
    page.wait_for_function("document.getElementById('copy-link').textContent === 'Copied'")
    assert page.inner_text("#copy-link") == "Copied"
    assert page.evaluate("navigator.clipboard.readText()") == page.input_value("#consent-url")
    watched.assert_clean("consent-link")


def test_consent_landing_page_polls_under_the_csp_without_violations(browser, live_server, pages_world):
    watched = Watched(browser.new_context())
    with watched.page.expect_response(lambda r: pages_world.progress in r.url
                                      and r.request.headers.get("hx-request") == "true") as poll:
        watched.visit(live_server.url + pages_world.progress)
    assert poll.value.status == 286  # no verification yet: htmx is told to stop polling
    assert "Checking access" in watched.page.inner_text("#verification")
    watched.assert_clean("consent-landing")
    watched.visit(live_server.url + reverse("onboarding:consent-callback"), expect_status=400)
    assert "recognise this link" in watched.page.inner_text("h1")
    # Chromium reports the page's own 400 status as a console error; nothing else may appear.
    watched.errors = [e for e in watched.errors if "status of 400" not in e]
    watched.assert_clean("consent-refused")
