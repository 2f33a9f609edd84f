"""The dashboard in Chromium on a phone's width: nothing wider than the screen, both charts drawn, the data table
behind a chart opens, and a status tile leads to the tenants list filtered by it. Screenshots go to var/screenshots/."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchange import rollups
from exchange.models import TokenTest
from exchange.services import token_test_finish
from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world(make_tenant, make_staff):
    """Tenants failing, without a role and verified, with their tests finished (so rollups) and hops recorded."""
    make_staff("viewer", "vic")
    now = timezone.now()
    for code in ("verified", "no_role", "AADSTS700016", "AADSTS7000229", "verified"):
        test = TokenTest.objects.create(tenant=make_tenant(primary_domain=f"a-rather-long-tenant-name-{code.lower()}"
                                                           ".contoso.example"),
                                        trigger="manual", status="running", started_at=now)
        token_test_finish(test=test, code=code)
    rollups.tests_counted([(now - timedelta(hours=h), "transient", "http_503") for h in range(1, 40, 3)])
    rollups.hops_counted([(now, hop, ms) for hop in ("imds", "home_token", "tenant_token", "arm_probe")
                          for ms in (12, 40, 90, 300, 2600)])


@pytest.fixture
def browser(live_server, world):
    with chromium() as browser:
        yield browser


def test_dashboard_on_a_phone(browser, live_server):
    page = browser.new_page(viewport=PHONE)
    sign_in(page, live_server.url, "vic")
    page.wait_for_url(f"{live_server.url}/dashboard/")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("Boolean(Chart.getChart('chart-hours') && Chart.getChart('chart-days'))")
    assert page.evaluate("document.querySelector('main').scrollWidth <= document.querySelector('main').clientWidth")
    page.click("summary:has-text('Data table: token tests finished by hour')")
    table = page.locator("details[open] table")
    assert table.is_visible() and table.locator("th[scope=col]").first.inner_text() == "Hour"
    assert page.evaluate("document.querySelector('main').scrollWidth <= document.querySelector('main').clientWidth")
    page.screenshot(path=str(SHOTS / "dashboard-phone.png"), full_page=True)
    assert page.locator("a.tile[data-status=failing] .figure").inner_text() == "2"
    page.click("a.tile[data-status=failing]")
    page.wait_for_url(f"{live_server.url}/tenants/?status=failing")
