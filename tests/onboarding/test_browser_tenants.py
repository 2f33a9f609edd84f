"""What an operator does on the tenants page, in Debian's Chromium: filter to the tenants not invited yet, select
the page, issue their consent links in one go, and end on one copyable message per customer admin (a tenant that
cannot take the action is reported, not silently skipped). Screenshots go to var/screenshots/."""
import pytest

from onboarding.models import ConsentLink, Customer
from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def fleet(make_tenant, make_staff):
    make_staff("operator", "olivia")
    contoso = Customer.objects.create(name="Contoso", contact_name="Ada Admin", contact_email="ada@contoso.example")
    fabrikam = Customer.objects.create(name="Fabrikam", contact_name="Bob Boss")
    drafts = [make_tenant(customer=contoso, primary_domain=f"{n}.contoso.example", consent_received_at=None)
              for n in ("one", "two")]
    drafts.append(make_tenant(customer=fabrikam, primary_domain="fabrikam.example", consent_received_at=None))
    verified = make_tenant(customer=fabrikam, primary_domain="ok.fabrikam.example", last_outcome="verified")
    return drafts, verified


def _walk(browser, url: str) -> tuple[list[str], list[str]]:
    """Sign in, filter, select the page, issue the links: (the messages shown, console errors)."""
    context = browser.new_context(ignore_https_errors=True, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, url, "olivia")
    page.wait_for_url(f"{url}/dashboard/")
    page.click("nav >> text=Tenants")
    page.wait_for_selector("text=ok.fabrikam.example")
    page.select_option("select[name=status]", "draft")  # htmx swaps the rows and pushes the URL
    page.locator("#tenant-rows >> text=ok.fabrikam.example").wait_for(state="detached")
    assert "status=draft" in page.url
    page.check("#select-page")
    assert page.locator("input.select-row:checked").count() == 3
    page.screenshot(path=str(SHOTS / "tenants-1-filtered-selected.png"), full_page=True)
    page.select_option("#bulk-action", "issue_links")
    page.click("form#bulk button[type=submit]")
    page.wait_for_selector("text=Issue consent links: 3 done")
    messages = [area.input_value() for area in page.locator("textarea[id^=message-]").all()]
    page.locator("button[data-copy]").first.click()
    page.wait_for_selector("button[data-copy]:text-is('Copied')")
    page.screenshot(path=str(SHOTS / "tenants-2-messages.png"), full_page=True)
    return messages, errors


def test_filter_select_the_page_and_issue_links_ending_on_copyable_messages(live_server, fleet):
    drafts, verified = fleet
    with chromium() as browser:
        messages, errors = _walk(browser, live_server.url)
    assert errors == []
    assert len(messages) == 2  # one per customer admin, in the customers' order
    contoso, fabrikam = messages
    assert contoso.startswith("Hello Ada Admin,") and contoso.count("/adminconsent?") == 2
    assert "one.contoso.example: https://" in contoso and "two.contoso.example: https://" in contoso
    assert fabrikam.startswith("Hello Bob Boss,") and "fabrikam.example: https://" in fabrikam
    assert ConsentLink.objects.count() == 3 and not ConsentLink.objects.filter(tenant=verified).exists()
    assert all(type(t).objects.get(pk=t.pk).status == "invited" for t in drafts)
