"""The dashboard: a first-steps empty state, then exchange health across tenants with a chart of recent runs."""
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.models import TokenTest
from exchange.services import token_test_finish


@pytest.mark.django_db
def test_empty_dashboard_says_what_to_do_first(staff_clients):
    page = staff_clients["viewer"].get(reverse("console:dashboard")).content.decode()
    assert "Nothing to show yet" in page and reverse("exchange:identities") in page


def _finished(tenant, code):
    test = TokenTest.objects.create(tenant=tenant, trigger="manual", status="running", started_at=timezone.now())
    token_test_finish(test=test, code=code)
    return test


@pytest.mark.django_db
def test_dashboard_counts_tenants_by_health_and_charts_runs(staff_clients, make_tenant):
    verified, no_role, failing = make_tenant(), make_tenant(), make_tenant()
    _finished(verified, "verified")
    _finished(no_role, "no_role")
    _finished(failing, "AADSTS700016")
    _finished(failing, "AADSTS700016")
    response = staff_clients["viewer"].get(reverse("console:dashboard"))
    health = response.context["health"]
    assert (health["tenants_total"], health["tenants_verified"], health["tenants_no_role"],
            health["tenants_failing"]) == (3, 1, 1, 1)
    assert health["recent_total"] == 4 and health["recent_success_rate"] == 25
    assert [t.pk for t in health["failing_tenants"]] == [no_role.pk, failing.pk]
    assert health["top_codes"][0] == {"diagnosis_code": "AADSTS700016", "n": 2}
    chart = json.loads(response.content.decode().split('id="health-chart-data" type="application/json">')[1]
                       .split("</script>")[0])
    assert sum(chart["verified"]) == 1 and sum(chart["failed"]) == 3 and len(chart["labels"]) == 14
    failing.refresh_from_db()
    assert failing.consecutive_failures == 2 and failing.status == "failing"
