"""What a person does, in Debian's Chromium: an operator adds a tenant by domain, issues the consent link, the
customer's admin consents on Microsoft's (the emulator's) page, lands on the portal and sees "Access verified";
and the decline path. Screenshots go to var/screenshots/."""
import pytest

from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(portal):
    with chromium() as browser:
        yield browser


@pytest.fixture
def portal(live_server, portal_on_emulator, settings, make_staff):
    settings.PORTAL_PUBLIC_URL = live_server.url
    portal_on_emulator.control.add_redirect_uris(app_id=str(portal_on_emulator.app.client_id),
                                                 uris=[f"{live_server.url}/consent/callback/"])
    make_staff("operator", "olivia")
    return live_server.url


def _sign_in(page, portal):
    sign_in(page, portal, "olivia")
    page.wait_for_url(f"{portal}/dashboard/")


def _onboard(page, portal, customer, domain, name):
    page.goto(f"{portal}/customers/")
    page.click("text=Add the first customer") if page.locator("text=Add the first customer").count() else \
        page.click("text=Add a customer")
    page.fill("input[name=name]", customer)
    page.click("button:has-text('Create customer')")
    page.fill("input[name=domain_or_id]", domain)
    page.click("button:has-text('Find and add the tenant')")
    page.wait_for_selector("text=Issue a consent link")
    page.screenshot(path=str(SHOTS / f"{name}-1-tenant-added.png"), full_page=True)
    page.click("button:has-text('Issue a consent link')")
    page.click("#copy-link")
    page.screenshot(path=str(SHOTS / f"{name}-2-consent-link.png"), full_page=True)
    return page.input_value("#consent-url")


def test_operator_onboards_a_tenant_and_the_customer_consents(browser, portal):
    context = browser.new_context(ignore_https_errors=True)
    operator = context.new_page()
    _sign_in(operator, portal)
    url = _onboard(operator, portal, "Fabrikam Inc.", "fabrikam.example", "accept")
    assert "/v2.0/adminconsent?" in url
    customer = browser.new_context(ignore_https_errors=True).new_page()  # the customer's admin: another browser
    customer.goto(url)
    assert customer.inner_text("#app-name") == "Contoso MSSP Keyless Access"
    customer.screenshot(path=str(SHOTS / "accept-3-microsoft-consent.png"), full_page=True)
    customer.click("#accept")
    customer.wait_for_selector("#verification-result", timeout=30000)
    customer.screenshot(path=str(SHOTS / "accept-4-landing.png"), full_page=True)
    assert customer.inner_text("#verification-result") == "Access verified"
    operator.goto(f"{portal}/customers/")
    operator.click("text=Fabrikam Inc.")
    operator.click("text=fabrikam.example")
    assert "Verified" in operator.inner_text("h1")
    operator.screenshot(path=str(SHOTS / "accept-5-tenant-verified.png"), full_page=True)


def test_the_customer_declines(browser, portal):
    context = browser.new_context(ignore_https_errors=True)
    operator = context.new_page()
    _sign_in(operator, portal)
    url = _onboard(operator, portal, "Northwind Traders", "northwind.example", "decline")
    customer = browser.new_context(ignore_https_errors=True).new_page()
    customer.goto(url)
    customer.click("#cancel")
    customer.wait_for_selector("#landing[data-kind=declined]")
    customer.screenshot(path=str(SHOTS / "decline-3-landing.png"), full_page=True)
    assert "Consent was declined" in customer.inner_text("h1")
    operator.goto(f"{portal}/customers/")
    operator.click("text=Northwind Traders")
    operator.click("text=northwind.example")
    assert "Declined" in operator.inner_text("h1")
