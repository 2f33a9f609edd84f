"""What a person does on the token tests list, in Debian's Chromium: types part of a tenant's domain, picks it from the
matches (htmx), and gets its runs, the other filters kept; then pages to older runs and back by cursor."""
import pytest
from django.utils import timezone

from exchange.models import TokenTest
from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(live_server, make_staff, make_tenant):
    make_staff("viewer", "vera")
    tenants = [make_tenant(primary_domain=f"{name}.example") for name in ("northwind", "northgate", "contoso")]
    now = timezone.now()
    TokenTest.objects.bulk_create([TokenTest(tenant=tenant, trigger="manual", status="failed", outcome="misconfigured",
                                             diagnosis_code="AADSTS70021", queued_at=now - timezone.timedelta(
                                                 minutes=n)) for tenant in tenants for n in range(60)])
    return live_server.url


@pytest.fixture
def browser(portal):
    with chromium() as browser:
        yield browser


def test_a_viewer_picks_a_tenant_by_search_and_pages_its_runs(browser, portal):
    page = browser.new_context().new_page()
    sign_in(page, portal, "vera")
    page.goto(f"{portal}/token-tests/?outcome=misconfigured")
    page.fill("input[name=q]", "north")
    page.wait_for_selector("#tenant-matches a")
    assert page.locator("#tenant-matches li").all_inner_texts()[0].startswith("northgate.example")
    assert page.locator("#tenant-matches li").count() == 2  # contoso does not match
    page.screenshot(path=str(SHOTS / "tokentests-1-tenant-picker.png"), full_page=True)
    page.click("#tenant-matches a:has-text('northwind.example')")
    page.wait_for_selector("text=Tenant: northwind.example")
    assert "outcome=misconfigured" in page.url and "tenant=" in page.url
    assert page.inner_text("nav.pagination span") == "60 runs"
    rows = page.locator("#tokentest-rows tbody tr")
    assert rows.count() == 50 and set(page.locator("#tokentest-rows tbody td:nth-child(2)").all_inner_texts()) == {
        f"northwind.example\n{rows.first.locator('small').inner_text()}"}
    page.click("a[rel=next]")
    page.wait_for_selector("a[rel=prev]")
    assert rows.count() == 10 and "older=" in page.url and "tenant=" in page.url
    page.screenshot(path=str(SHOTS / "tokentests-2-older-runs.png"), full_page=True)
    page.click("a[rel=prev]")  # back to the newest page, which has no newer link
    page.wait_for_selector("a[rel=prev]", state="detached")
    assert rows.count() == 50 and "newer=" in page.url
