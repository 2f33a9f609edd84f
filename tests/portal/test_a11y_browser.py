"""In Chromium, signed in as an admin: every main staff page fits a 390 px wide phone screen (no sideways scroll: tables
scroll inside their own box, long ids wrap), and an axe-core scan (vendored: static/vendor/axe-core) of the main pages
and of the consent landing page finds no serious or critical WCAG 2 A/AA violation. Moderate and minor findings are
printed (run with -s to read them). Screenshots of the phone-sized pages go to var/screenshots/."""
import itertools
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from playwright.sync_api import expect

from exchange.models import FederatedCredential, ManagedIdentity, TokenTestStep
from ops.models import Alert, AlertKind, Channel, Delivery, Route
from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
BLOCKING = {"serious", "critical"}
# The page's width and screen's width, and (to name the culprit in a failure) the outermost elements past the screen's
# edge, those in no scrolling box first.
MEASURE = """() => {
  const inner = window.innerWidth, scroll = document.documentElement.scrollWidth;
  const clipped = el => { for (let a = el.parentElement; a; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== "visible") return true; } return false; };
  const outer = (els) => els.filter(el => !els.some(o => o !== el && o.contains(el)));
  const beyond = scroll > inner ? [...document.querySelectorAll("body *")]
    .filter(el => el.getBoundingClientRect().right > inner + 1) : [];
  const wide = outer(beyond.filter(el => !clipped(el))).concat(outer(beyond)).slice(0, 4);
  const describe = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + el.className : "");
  return [scroll, inner, [...new Set(wide)].map(describe)];
}"""
HEADINGS = "() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => Number(h.tagName[1]))"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# WCAG 2.0/2.1 level A and AA rules (the ones that fail the test) and axe's best practices (printed only); each finding
# comes back as [impact, rule, help, a few nodes' selectors, whether it is a WCAG rule].
AXE_RUN = """async (wcag) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: [...wcag, "best-practice"]}});
  return result.violations.map(v => [v.impact, v.id, v.help, v.nodes.slice(0, 3).map(n => n.target.join(" ")),
                                     v.tags.some(t => wcag.includes(t))]);
}"""


class Page(NamedTuple):
    name: str
    url: str
    scan: bool  # also scanned by axe-core (the main pages); every page is checked at phone width


def _url(name, *args, optional=False):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        if optional:  # a page another branch adds (the tenants page): checked once it exists
            return None
        raise


def staff_pages(world) -> list[Page]:
    """The staff pages, signed in as an admin: one place to add a page to both checks."""
    tenant, customer = world.tenant, world.tenant.customer
    pages = [
        Page("dashboard", _url("console:dashboard"), True),
        Page("customers", _url("onboarding:customer-list"), True),
        Page("customer", _url("onboarding:customer-detail", customer.pk), True),
        Page("customer-new", _url("onboarding:customer-create"), False),
        Page("bulk-import", _url("onboarding:bulk-import"), False),
        Page("tenants", _url("onboarding:tenant-list", optional=True), True),
        Page("tenant", _url("onboarding:tenant-detail", tenant.pk), True),
        Page("tenant-offboard", _url("onboarding:tenant-offboard", tenant.pk), False),
        Page("tokentests", _url("exchange:tokentest-list"), True),
        Page("tokentest", _url("exchange:tokentest-detail", world.test.pk), True),
        Page("sweep", _url("exchange:sweep-detail", world.sweep.pk), True),
        Page("identities", _url("exchange:identities"), True),
        Page("homeapp-edit", _url("exchange:homeapp-edit", tenant.home_app.pk), False),
        Page("identity-new", _url("exchange:identity-create"), False),
        Page("fic-create", _url("exchange:fic-create", tenant.home_app.pk, world.identity.pk), False),  # a <pre>
        Page("fic-delete", _url("exchange:fic-delete", world.fic.pk), False),
        Page("audit", _url("portal:audit-list"), True),
        Page("audit-verify", _url("portal:audit-verify"), False),
        Page("login-locks", _url("portal:login-locks"), False),
        Page("alerts", _url("ops:alert-list"), True),
        Page("alert-settings", _url("ops:alert-settings"), True),
    ]
    return [page for page in pages if page.url]


@pytest.fixture
def crowded(pages_world):
    """pages_world plus the rows whose long values widen a page: identities and a FIC (GUIDs, an issuer URL), a step
    with token claims, an alert delivered to a webhook with a long URL."""
    app, now = pages_world.tenant.home_app, timezone.now()
    worker = "keyless-worker-westeurope-production"
    pages_world.identity = ManagedIdentity.objects.create(name=worker, client_id=uuid.uuid4(),
                                                          principal_id=uuid.uuid4(), tenant_id=app.home_tenant_id)
    pages_world.fic = FederatedCredential.objects.create(
        home_app=app, graph_id="f1", name=worker, issuer=f"https://login.microsoftonline.com/{app.home_tenant_id}/v2.0",
        subject=str(uuid.uuid4()), audiences=["api://AzureADTokenExchange"])
    TokenTestStep.objects.create(test=pages_world.test, name="customer_token", started_at=now, ok=True,
                                 trace_id=str(uuid.uuid4()), correlation_id=str(uuid.uuid4()),
                                 claims={"tid": str(pages_world.tenant.tenant_id), "oid": str(uuid.uuid4()),
                                         "aud": "https://management.azure.com/"})
    channel = Channel.objects.create(name="Operations on-call (Teams)", kind="webhook", format="teams",
                                     url="https://contoso.webhook.office.com/webhookb2/" + "0123456789abcdef" * 8)
    Route.objects.create(channel=channel)
    alert = Alert.objects.create(kind=AlertKind.values[0], dedupe_key="a11y", title="x" * 80,
                                 text="A long alert text without spaces: " + "y" * 120)
    Delivery.objects.create(alert=alert, channel=channel, channel_kind="webhook", status="failed", attempts=3,
                            last_error="HTTPSConnectionPool(host='contoso.webhook.office.com'): " + "z" * 100)
    return pages_world


@pytest.fixture
def browser(live_server, crowded, make_staff):
    make_staff("admin", "ada")
    with chromium() as browser:
        yield browser


def public_pages(world) -> list[Page]:
    """The pages seen signed out: the sign-in page and the customer's consent landing page."""
    return [Page("login", reverse("portal:login"), True), Page("consent-landing", world.progress, True)]


def _walk(page, base, world, only_scanned=False):
    """Visit the public pages, sign in as the admin, visit the staff pages; yield each page once it has loaded."""
    for item in public_pages(world) + [None] + staff_pages(world):
        if item is None:
            sign_in(page, base, "ada")
            page.wait_for_url(base + reverse("console:dashboard"))
        elif item.scan or not only_scanned:
            response = page.goto(base + item.url, wait_until="networkidle")
            assert response.status == 200, f"{item.name}: {item.url} answered {response.status}"
            yield item


def _heading_problem(levels: list[int]) -> str:
    if levels.count(1) != 1 or levels[0] != 1:
        return f"{levels.count(1)} h1 (first heading h{levels[0] if levels else '-'})"
    skipped = [f"h{a}→h{b}" for a, b in itertools.pairwise(levels) if b > a + 1]
    return f"heading levels skipped: {', '.join(skipped)}" if skipped else ""


def test_every_page_fits_a_phone_screen_and_has_one_h1_and_ordered_headings(browser, live_server, crowded):
    page = browser.new_context(viewport=PHONE).new_page()
    problems = []
    for item in _walk(page, live_server.url, crowded):
        page.screenshot(path=str(SHOTS / f"phone-{item.name}.png"), full_page=True)
        scroll, inner, culprits = page.evaluate(MEASURE)
        if scroll > inner:
            problems.append(f"{item.name} is {scroll} px wide on a {inner} px screen ({', '.join(culprits)})")
        if heading := _heading_problem(page.evaluate(HEADINGS)):
            problems.append(f"{item.name}: {heading}")
    assert problems == [], "\n".join(problems)
    _assert_keyboard_reaches_the_content_and_scrolls_a_table(page, live_server.url)


def _assert_keyboard_reaches_the_content_and_scrolls_a_table(page, base):
    """On the phone-sized audit page: the first Tab stop is the skip link, which moves the focus to the main content;
    the audit table, wider than the screen, scrolls inside its box from the keyboard."""
    page.goto(base + reverse("portal:audit-list"), wait_until="networkidle")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.locator(".skip-link").is_visible()  # shown when focused, off-screen otherwise
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    table = page.locator(".table-scroll[aria-label='Audit events']")
    assert table.evaluate("box => box.scrollWidth > box.clientWidth")  # the table is wider than the screen
    table.focus()
    page.keyboard.press("ArrowRight")
    expect(table).not_to_have_js_property("scrollLeft", 0)  # the arrow key scrolled it (smoothly: waited for)


def _scan(page, name, findings):
    page.add_script_tag(path=str(AXE))
    assert page.evaluate("axe.version").startswith("4."), name
    findings += [(name, *finding) for finding in page.evaluate(AXE_RUN, WCAG)]


def test_main_pages_have_no_serious_or_critical_axe_violation(browser, live_server, crowded):
    # The axe script is added by the test only (bypass_csp lets it in: pages allow only their own static scripts).
    page = browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()
    findings = []
    for item in _walk(page, live_server.url, crowded, only_scanned=True):
        _scan(page, item.name, findings)
    # A refused field: the add-tenant form with a bad domain (issue 13: its error was the least visible text).
    page.goto(live_server.url + reverse("onboarding:customer-detail", args=[crowded.tenant.customer.pk]))
    page.fill("input[name=domain_or_id]", "not a domain!")
    page.click("button:has-text('Find and add the tenant')")
    field = page.locator("input[name=domain_or_id]")
    error = page.locator(f"#{field.get_attribute('id')}_error")
    assert field.get_attribute("aria-invalid") == "true" and error.is_visible()
    assert f"{field.get_attribute('id')}_error" in field.get_attribute("aria-describedby").split()
    assert "Enter a domain such as contoso.com" in error.inner_text()
    _scan(page, "customer-add-tenant-refused", findings)
    blocking = [finding[:5] for finding in findings if finding[1] in BLOCKING and finding[5]]
    for name, impact, rule, text, nodes, wcag in findings:
        if (name, impact, rule, text, nodes) not in blocking:
            print(f"axe {impact}{'' if wcag else ' (best practice)'}: {name}: {rule} ({text}) at {nodes}")
    assert blocking == [], "\n".join(f"{name}: {impact} {rule}: {text} at {nodes}"
                                     for name, impact, rule, text, nodes in blocking)
