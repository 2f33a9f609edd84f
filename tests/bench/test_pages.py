"""bench/pages.py --small, in the test database: the data set it builds (counts, a chain that verifies) and a round
of every page it measures (each answers 200, or is skipped because its URL is not in this build). No timings."""
import pytest

from bench import pages_data
from bench.pages import PAGES
from bench.pages_run import build, facts_of, measure, report
from exchange.models import Sweep, TokenTest, TokenTestStep
from onboarding.models import Customer, CustomerTenant
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify


@pytest.mark.django_db
def test_the_small_data_set_and_every_page_of_the_benchmark():
    scale = pages_data.SMALL
    counts = build("SMALL", out=lambda line: None)
    assert counts | {"tenants": scale.tenants, "tests": scale.tests, "steps": 4 * scale.tests,
                     "audit_events": scale.audit_events, "alerts": 2 * scale.tenants, "profiles": 3} == counts
    assert counts["tenant_tags"] == scale.tenants // 5 and counts["customer_tags"] == Customer.objects.count()
    assert CustomerTenant.objects.exclude(last_check_at=None).count() == scale.tenants
    assert CustomerTenant.objects.count() == scale.tenants and Sweep.objects.count() == scale.sweeps
    assert TokenTest.objects.count() == scale.tests and TokenTestStep.objects.count() == 4 * scale.tests
    assert CustomerTenant.objects.filter(customer_id=1).count() == scale.big_customer
    assert Customer.objects.count() == 1 + (scale.tenants - scale.big_customer) // 5
    assert AuditEvent.objects.count() == scale.audit_events + 2  # + the admin's creation and the rollups' backfill
    assert audit_chain_verify().ok

    results = measure(PAGES, facts_of(), repeat=1, out=lambda line: None)
    assert [r.label for r in results] == [p.label for p in PAGES]
    for result in results:
        assert result.skipped == "URL not here" or (result.status == 200 and result.queries > 0), result
    measured = {r.label for r in results if not r.skipped}
    assert {"dashboard", "token tests, deep page", "audit, deep page", "a customer (the biggest)", "tenants, a tag",
            "a tenant without its role", "access profiles", "emergency stop", "exports", "alert settings",
            "audit verification"} <= measured
    assert "token tests, deep page" in report(results)
