"""The token tests list: pages by cursor with its filters kept, the diagnosis filter on the catalogue's codes (exact),
the chosen tenant shown by name, counts exact or estimated."""
import re
from html import unescape

import pytest
from django.urls import reverse

from exchange.forms import DIAGNOSIS_CHOICES
from exchange.models import TokenTest
from portal import keyset

LIST = reverse("exchange:tokentest-list")


def older_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]*)"[^>]*rel="next"', html)
    return unescape(found.group(1)) if found else None


@pytest.mark.django_db
def test_following_the_older_links_shows_every_matching_run_once_with_the_filters(staff_clients, make_tenant,
                                                                                  monkeypatch):
    monkeypatch.setattr("exchange.views.PAGE_SIZE", 4)
    tenant, other = make_tenant(), make_tenant()
    TokenTest.objects.bulk_create([TokenTest(tenant=tenant if n % 2 else other, trigger="manual", status="failed",
                                             outcome="misconfigured" if n % 3 else "verified",
                                             diagnosis_code="AADSTS70021" if n % 3 else "verified")
                                   for n in range(30)])
    expected = list(TokenTest.objects.filter(tenant=tenant, outcome="misconfigured").order_by("-queued_at", "-pk")
                    .values_list("pk", flat=True))
    client, seen, url = staff_clients["viewer"], [], f"{LIST}?tenant={tenant.pk}&outcome=misconfigured"
    while url:
        response = client.get(url)
        seen += [t.pk for t in response.context["page"]]
        link = older_link(response.content.decode())
        if link:
            assert "tenant=" in link and "outcome=misconfigured" in link and "older=" in link
        url = f"{LIST}{link}" if link else None
    assert seen == expected and len(expected) == 10


@pytest.mark.django_db
def test_the_diagnosis_filter_is_a_select_of_the_catalogue_and_matches_exactly(staff_clients, make_tenant):
    tenant = make_tenant()
    for code in ("AADSTS70021", "AADSTS700213", "verified"):
        TokenTest.objects.create(tenant=tenant, trigger="manual", status="failed", outcome="misconfigured",
                                 diagnosis_code=code)
    client = staff_clients["viewer"]
    page = client.get(LIST).content.decode()
    assert '<select name="code"' in page and '<option value="AADSTS70021">' in page
    assert {"AADSTS70021", "AADSTS700016", "no_role", "outage"} <= {code for code, _ in DIAGNOSIS_CHOICES}
    exact = client.get(LIST, {"code": "AADSTS70021"}).context["page"]
    assert [t.diagnosis_code for t in exact] == ["AADSTS70021"]  # not AADSTS700213, which contains it


@pytest.mark.django_db
def test_a_code_outside_the_catalogue_is_refused_with_a_reason(staff_clients):
    response = staff_clients["viewer"].get(LIST, {"code": "70021"})
    assert response.status_code == 200
    assert "is not a diagnosis of the catalogue" in response.content.decode()


@pytest.mark.django_db
def test_the_chosen_tenant_is_shown_by_name_even_without_runs(staff_clients, make_tenant):
    tenant = make_tenant(primary_domain="quiet.example")
    page = staff_clients["viewer"].get(LIST, {"tenant": tenant.pk, "outcome": "verified"}).content.decode()
    assert "Tenant: <strong>quiet.example</strong>" in page and "No token tests match" in page
    assert '<a href="?outcome=verified">all tenants</a>' in page
    assert "<select" in page and page.count("<option") < 100  # no list of every tenant


@pytest.mark.django_db
def test_the_count_is_exact_below_the_threshold_and_about_past_it(staff_clients, make_tenant, monkeypatch):
    tenant = make_tenant()
    TokenTest.objects.bulk_create([TokenTest(tenant=tenant, trigger="manual") for _ in range(12)])
    client = staff_clients["viewer"]
    assert "<span>12 runs</span>" in client.get(LIST).content.decode()
    monkeypatch.setattr(keyset, "planner_estimate", lambda queryset: 1_000_000)
    monkeypatch.setattr(keyset.count_bounded, "__kwdefaults__", {"exact_up_to": 10})
    assert "<span>about 1,000,000 runs</span>" in client.get(LIST).content.decode()


@pytest.mark.django_db
def test_every_sweep_is_listed_and_a_sweep_links_to_all_its_failures(staff_clients, make_tenant, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from exchange import views
    from exchange.models import Sweep

    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    monkeypatch.setattr(views, "SWEEP_FAILURES_SHOWN", 2)
    start = timezone.now() - timedelta(days=10)
    sweeps = [Sweep.objects.create(trigger="schedule", started_at=start + timedelta(days=n), finished_at=start
                                   + timedelta(days=n, minutes=5), total=4, done=4, succeeded=1, failed=3)
              for n in range(5)]
    tenant = make_tenant()
    TokenTest.objects.bulk_create([TokenTest(tenant=tenant, trigger="sweep", sweep=sweep, status=status)
                                   for sweep in sweeps for status in ("failed", "failed", "failed", "succeeded")])
    client = staff_clients["viewer"]
    first = client.get(reverse("exchange:sweep-list")).context["page"]
    second = client.get(reverse("exchange:sweep-list"), {"older": first.older}).context["page"]
    assert [s.pk for s in first] + [s.pk for s in second] == [s.pk for s in reversed(sweeps)]
    detail = client.get(reverse("exchange:sweep-detail", kwargs={"pk": sweeps[0].pk})).content.decode()
    assert f'The first 2 of 3: <a href="{LIST}?sweep={sweeps[0].pk}&amp;status=failed">' in detail
    response = client.get(LIST, {"sweep": sweeps[0].pk, "status": "failed"})
    runs = response.context["page"]
    assert len(runs) == 3 and {t.sweep_id for t in runs} == {sweeps[0].pk}
    assert '<a href="?status=failed">all sweeps</a>' in response.content.decode()
