"""In Chromium: a tenant without the agreed role shows what is missing and what to send; the customer's admin grants
the role (the emulator's control) and "Test now" verifies it. And the demo's promise: Northwind consented on the
emulator's page lands on "Access verified". Screenshots go to var/screenshots/."""
import pytest

from emulator import world as demo
from exchange.models import TokenTest
from onboarding.models import CustomerTenant
from tests.exchange.conftest import run_test
from tests.fixtures.browser import SHOTS, chromium
from tests.onboarding.test_browser import _onboard, _sign_in, portal  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.browser


def test_a_no_role_tenant_is_fixed_by_granting_the_agreed_role(portal, portal_on_emulator, make_tenant,  # noqa: F811
                                                               django_capture_on_commit_callbacks):
    tenant = make_tenant(tenant_id=demo.TAILSPIN, primary_domain="tailspin.example", home_app=portal_on_emulator.app)
    assert run_test(tenant, django_capture_on_commit_callbacks).outcome == "no_role"
    principal = TokenTest.objects.get(tenant=tenant).steps.get(name="tenant_token").claims["oid"]
    with chromium() as browser:
        page = browser.new_context(ignore_https_errors=True).new_page()
        _sign_in(page, portal)
        page.goto(f"{portal}/tenants/{tenant.pk}/")
        assert page.inner_text("#next-action") == "Copy the role request"
        assert page.inner_text("#principal-id") == principal
        assert "Reader on every subscription it can see" in page.inner_text("#missing-roles")
        commands = page.input_value("#role-commands")
        assert commands.startswith(f"az role assignment create --assignee-object-id {principal} ")
        assert f"object id {principal} in your tenant" in page.input_value("#role-request")
        page.click("#next-action")
        page.wait_for_selector("#next-action:has-text('Copied')")
        page.screenshot(path=str(SHOTS / "no-role-1-panel.png"), full_page=True)
        # The customer's admin runs the command: the emulator's role control does what `az` would.
        portal_on_emulator.control.add_role(tenant=demo.TAILSPIN, app_id=demo.APP_ID)
        page.click("button:has-text('Test now')")
        page.wait_for_selector("text=Access verified", timeout=30000)
        page.screenshot(path=str(SHOTS / "no-role-2-verified-test.png"), full_page=True)
        page.goto(f"{portal}/tenants/{tenant.pk}/")
        assert "Verified" in page.inner_text("h1") and not page.locator("#no-role").count()
        assert page.inner_text("#next-action") == "Test now"
    assert CustomerTenant.objects.get(pk=tenant.pk).status == "verified"


def test_the_demos_northwind_reaches_access_verified(portal):  # noqa: F811
    with chromium() as browser:
        operator = browser.new_context(ignore_https_errors=True).new_page()
        _sign_in(operator, portal)
        url = _onboard(operator, portal, "Northwind Traders", "northwind.example", "northwind")
        customer = browser.new_context(ignore_https_errors=True).new_page()  # the customer's admin
        customer.goto(url)
        customer.click("#accept")
        customer.wait_for_selector("#verification-result", timeout=30000)
        customer.screenshot(path=str(SHOTS / "northwind-3-landing.png"), full_page=True)
        assert customer.inner_text("#verification-result") == "Access verified"
        operator.goto(f"{portal}/customers/")
        operator.click("text=Northwind Traders")
        operator.click("text=northwind.example")
        assert "Verified" in operator.inner_text("h1")
        operator.screenshot(path=str(SHOTS / "northwind-4-tenant-verified.png"), full_page=True)
