"""What an operator sees during a token-endpoint outage, in Debian's Chromium: one banner naming the endpoint, since
when and how many tenants, while each tenant keeps its last definitive state ("Verified" stays "Verified", with
"last check could not reach Microsoft" beside it). Screenshots go to var/screenshots/."""
from datetime import timedelta

import pytest

from emulator import world as demo
from exchange import services
from exchange.breaker import outages_open
from exchange.models import Sweep, TokenTest
from onboarding.models import CustomerTenant
from tests.fixtures.browser import SHOTS, chromium, sign_in

pytestmark = pytest.mark.browser
TENANTS = {demo.FABRIKAM: "fabrikam.example", demo.TAILSPIN: "tailspin.example", demo.NORTHWIND: "northwind.example"}


def _sweep(tenants, **execute) -> list[int]:
    sweep = Sweep.objects.create(trigger="manual", total=len(tenants))
    ids = [TokenTest.objects.create(tenant=t, trigger="sweep", sweep=sweep).pk for t in tenants]
    services.token_tests_execute(test_ids=ids, **execute)
    return ids


@pytest.fixture
def outage(live_server, portal_on_emulator, make_tenant, make_staff, settings):
    """Three tenants swept while Microsoft answers, then swept during a token-endpoint outage that outlasts what a
    sweep waits for (the held tests end "transient", naming the outage)."""
    settings.BREAKER_MIN_FAILURES = settings.ALERTS_OUTAGE_MIN_TENANTS = 2
    make_staff("operator", "olivia")
    tenants = [make_tenant(tenant_id=t, primary_domain=d, home_app=portal_on_emulator.app) for t, d in TENANTS.items()]
    _sweep(tenants)
    before = {t.pk: t.status for t in CustomerTenant.objects.all()}
    portal_on_emulator.control.faults(token={"fail_next": 10_000, "fail_status": 503, "retry_after": 0})
    ids = _sweep(tenants)
    # The home tenant's exchange was proven by the first sweep (reused for a while): the customer tenants' fails.
    since = outages_open()[("global", "tenant_token")].since
    services.token_tests_execute(test_ids=ids, now=since + timedelta(minutes=settings.SWEEP_OUTAGE_MAX_MINUTES + 1))
    outcomes = dict(TokenTest.objects.filter(pk__in=ids).values_list("tenant", "outcome"))
    assert [outcomes[t.pk] for t in tenants[:2]] == ["transient", "transient"]  # Fabrikam, Tailspin
    return live_server.url, tenants, before


def test_an_outage_is_one_banner_and_every_tenant_keeps_its_state(outage):
    portal, tenants, before = outage
    after = {t.pk: t for t in CustomerTenant.objects.all()}
    assert {pk: t.status for pk, t in after.items()} == before  # nothing repainted by the outage
    assert [before[t.pk] for t in tenants[:2]] == ["verified", "no_role"]
    assert [after[t.pk].last_check_outcome for t in tenants[:2]] == ["transient", "transient"]
    with chromium() as browser:
        page = browser.new_context(ignore_https_errors=True).new_page()
        sign_in(page, portal, "olivia")
        page.wait_for_url(f"{portal}/dashboard/")
        banner = page.inner_text("#outage-banner")
        assert "Outage: Entra ID token endpoint (customer tenants)" in banner and "for 2 tenants" in banner
        page.screenshot(path=str(SHOTS / "outage-1-dashboard.png"), full_page=True)
        page.goto(f"{portal}/tenants/{tenants[0].pk}/")
        assert "Verified" in page.inner_text("h1")
        assert page.inner_text(".tenant-health .last-check") == "last check could not reach Microsoft"
        assert page.locator("#outage-banner").is_visible()
        page.screenshot(path=str(SHOTS / "outage-2-tenant-verified.png"), full_page=True)
        page.goto(f"{portal}/customers/{tenants[0].customer_id}/")
        assert page.inner_text("td .badge") == "Verified"
        assert page.inner_text("td .last-check") == "last check could not reach Microsoft"
