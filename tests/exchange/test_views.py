"""Token-test and sweep pages: who may start what, the list's filters, and the live fragments that stop polling."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.models import Sweep, TokenTest


@pytest.mark.django_db
def test_sweep_progress_fragment_stops_polling_when_done(staff_clients):
    sweep = Sweep.objects.create(trigger="manual", total=4, done=1)
    url = reverse("exchange:sweep-detail", kwargs={"pk": sweep.pk})
    page = staff_clients["viewer"].get(url)
    assert b"<html" in page.content and b'hx-trigger="load delay:500ms, every 2s"' in page.content
    fragment = staff_clients["viewer"].get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and b"<html" not in fragment.content and b"1 of 4" in fragment.content
    Sweep.objects.filter(pk=sweep.pk).update(done=4, succeeded=3, failed=1, finished_at=timezone.now())
    done = staff_clients["viewer"].get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and b"4 of 4" in done.content and b"hx-trigger" not in done.content


@pytest.mark.django_db
def test_run_status_fragment_stops_polling_when_finished(staff_clients, make_tenant):
    test = TokenTest.objects.create(tenant=make_tenant(), trigger="manual", status="running")
    url = reverse("exchange:tokentest-detail", kwargs={"pk": test.pk})
    assert staff_clients["viewer"].get(url, HTTP_HX_REQUEST="true").status_code == 200
    TokenTest.objects.filter(pk=test.pk).update(status="failed", outcome="not_consented",
                                                diagnosis_code="AADSTS700016", finished_at=timezone.now())
    done = staff_clients["viewer"].get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    assert b"Not consented in this tenant" in done.content and b"re-issue" in done.content


@pytest.mark.django_db
def test_unknown_run_is_a_404(staff_clients):
    assert staff_clients["viewer"].get(reverse("exchange:tokentest-detail", kwargs={"pk": 999})).status_code == 404


@pytest.mark.django_db
def test_list_filters_by_outcome_and_code(staff_clients, make_tenant):
    tenant = make_tenant()
    TokenTest.objects.create(tenant=tenant, trigger="manual", status="failed", outcome="misconfigured",
                             diagnosis_code="AADSTS70021")
    TokenTest.objects.create(tenant=tenant, trigger="manual", status="succeeded", outcome="verified",
                             diagnosis_code="verified")
    client = staff_clients["viewer"]
    filtered = client.get(reverse("exchange:tokentest-list"), {"code": "AADSTS70021"}, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="tokentest-rows")
    assert b"<html" not in filtered.content and b"AADSTS70021" in filtered.content
    assert b">verified<" not in filtered.content
    by_outcome = client.get(reverse("exchange:tokentest-list"), {"outcome": "verified"})
    assert [t.outcome for t in by_outcome.context["page"].object_list] == ["verified"]


@pytest.mark.django_db
def test_empty_list_explains_when_tests_run(staff_clients):
    assert b"Tests run when a customer consents" in staff_clients["viewer"].get(
        reverse("exchange:tokentest-list")).content


@pytest.mark.django_db
def test_sweep_failures_appear_in_the_polled_fragment_as_it_runs_and_when_it_ends(staff_clients, make_tenant):
    sweep = Sweep.objects.create(trigger="manual", total=3, done=1, failed=1)
    TokenTest.objects.create(tenant=make_tenant(primary_domain="broken.example"), trigger="sweep", sweep=sweep,
                             status="failed", outcome="misconfigured", diagnosis_code="AADSTS70021",
                             finished_at=timezone.now())
    url = reverse("exchange:sweep-detail", kwargs={"pk": sweep.pk})
    client = staff_clients["viewer"]
    running = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="sweep-failures"' in running and "broken.example" in running and "AADSTS70021" in running
    TokenTest.objects.create(tenant=make_tenant(primary_domain="later.example"), trigger="sweep", sweep=sweep,
                             status="failed", outcome="not_consented", diagnosis_code="AADSTS700016",
                             finished_at=timezone.now())
    Sweep.objects.filter(pk=sweep.pk).update(done=3, succeeded=1, failed=2, finished_at=timezone.now())
    done = client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and "later.example" in done.content.decode()  # no reload needed
    assert '<span class="badge bad">Credential misconfigured</span>' in done.content.decode()


@pytest.mark.django_db
def test_an_offboarded_tenants_removal_confirmation_is_not_a_red_failure(staff_clients, make_tenant):
    tenant = make_tenant(offboarded_at=timezone.now() - timedelta(minutes=5))
    test = TokenTest.objects.create(tenant=tenant, trigger="manual", status="failed", outcome="not_consented",
                                    diagnosis_code="AADSTS700016", finished_at=timezone.now())
    page = staff_clients["viewer"].get(reverse("exchange:tokentest-detail", kwargs={"pk": test.pk})).content.decode()
    assert '<span class="badge ok">Removal confirmed</span>' in page and 'id="removal-confirmed"' in page
    assert "Not consented in this tenant" not in page
    detail = staff_clients["viewer"].get(reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk})).content
    assert b'<li class="ok">' in detail and b"Removal confirmed</span>" in detail
