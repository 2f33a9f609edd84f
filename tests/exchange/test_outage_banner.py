"""The outage banner on staff pages: an endpoint failing transiently for many tenants at once (at least
ALERTS_OUTAGE_MIN_TENANTS within ALERTS_OUTAGE_WINDOW_MINUTES), or an open circuit breaker — which endpoint, since
when, how many tenants — read cheaply and never shown on the customers' public pages."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.breaker import breaker_observe
from exchange.models import TokenTest, TokenTestStep
from exchange.outages import endpoints_failing, outage_banner


@pytest.fixture
def failed_on(make_tenant):
    """failed_on(step, n, outcome=..., status=...): n tenants whose last test failed on that hop."""
    def make(step, n, *, outcome="transient", status="failed", at=None):
        at = at or timezone.now() - timedelta(minutes=1)
        for _ in range(n):
            test = TokenTest.objects.create(tenant=make_tenant(), trigger="sweep", status=status, outcome=outcome,
                                            queued_at=at, finished_at=at if status == "failed" else None)
            TokenTestStep.objects.create(test=test, name="imds", started_at=at, ok=True)
            TokenTestStep.objects.create(test=test, name=step, started_at=at, ok=False, http_status=503)
        return at

    return make


def test_the_banner_needs_many_tenants_failing_on_one_endpoint(failed_on, settings):
    settings.ALERTS_OUTAGE_MIN_TENANTS = 3
    first = failed_on("tenant_token", 2, at=timezone.now() - timedelta(minutes=3))
    failed_on("arm_probe", 2)
    assert endpoints_failing(now=timezone.now()) == {}  # two tenants on each: their own trouble, not an outage
    failed_on("tenant_token", 1, outcome="", status="queued")  # a third, waiting for its retry
    assert endpoints_failing(now=timezone.now()) == {("global", "tenant_token"): {"since": first, "tenants": 3}}
    [banner] = outage_banner()
    assert (banner["endpoint"], banner["label"], banner["tenants"], banner["breaker"]) == (
        "tenant_token", "Entra ID token endpoint (customer tenants)", 3, False)


def test_definitive_failures_and_old_ones_are_no_outage(failed_on, settings):
    settings.ALERTS_OUTAGE_MIN_TENANTS = 2
    failed_on("arm_probe", 3, outcome="no_role")  # ARM answered 403: the tenants' own state
    failed_on("tenant_token", 3, at=timezone.now() - timedelta(minutes=settings.ALERTS_OUTAGE_WINDOW_MINUTES + 1))
    assert endpoints_failing(now=timezone.now()) == {} and outage_banner() == []


def test_an_open_breaker_is_on_the_banner(make_tenant, settings):
    settings.BREAKER_MIN_FAILURES = 10
    breaker_observe(counts={("global", "home_token"): [0, 25]})
    [banner] = outage_banner()
    assert (banner["endpoint"], banner["cloud"], banner["breaker"]) == ("home_token", "global", True)


def test_the_banner_is_read_once_then_kept_briefly(failed_on, settings, django_assert_num_queries):
    settings.ALERTS_OUTAGE_MIN_TENANTS = 1
    failed_on("tenant_token", 1)
    with django_assert_num_queries(1):  # one grouped query (no breaker open: nothing held to count)
        assert len(outage_banner()) == 1
    with django_assert_num_queries(0):
        assert len(outage_banner()) == 1


def test_staff_pages_show_it_and_public_pages_do_not(failed_on, settings, staff_clients, client):
    settings.ALERTS_OUTAGE_MIN_TENANTS = 2
    failed_on("tenant_token", 2)
    page = staff_clients["viewer"].get(reverse("exchange:tokentest-list")).content.decode()
    banner = page.split('id="outage-banner"')[1].split("</section>")[0]
    assert "Outage: Entra ID token endpoint (customer tenants)" in banner and "for 2 tenants" in banner
    assert 'aria-live="polite"' in page.split('id="outage-banner"')[1][:60]
    assert "outage-banner" not in client.get(reverse("portal:login")).content.decode()
    assert "outage-banner" not in client.get("/consent/callback/").content.decode()
