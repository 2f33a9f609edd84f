"""Token-test and sweep pages: who may start what, the list's filters, and the live fragments that stop polling."""
import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.models import Sweep, TokenTest
from portal.models import AuditEvent


@pytest.mark.django_db
def test_only_operators_and_admins_may_test_now(staff_clients, make_tenant):
    tenant = make_tenant()
    url = reverse("onboarding:tenant-test-now", kwargs={"pk": tenant.pk})
    assert reverse("portal:login") in staff_clients[None].post(url)["Location"]
    for role in ("viewer", "auditor"):
        assert staff_clients[role].post(url).status_code == 403
    assert staff_clients["operator"].get(url).status_code == 405
    response = staff_clients["operator"].post(url)
    test = TokenTest.objects.get(tenant=tenant)
    assert response["Location"] == reverse("exchange:tokentest-detail", kwargs={"pk": test.pk})
    assert (test.status, test.trigger, test.requested_by.username) == ("queued", "manual", "operator-user")
    assert AuditEvent.objects.get(action="tokentest.queued").tenant_id == str(tenant.tenant_id)
    # A second press while it is queued shows the same run instead of queuing another.
    again = staff_clients["admin"].post(url)
    assert again["Location"] == response["Location"] and TokenTest.objects.count() == 1


@pytest.mark.django_db
def test_offboarded_tenant_is_tested_only_to_confirm_removal(staff_clients, make_tenant):
    tenant = make_tenant(offboarded_at=timezone.now())
    url = reverse("onboarding:tenant-test-now", kwargs={"pk": tenant.pk})
    staff_clients["operator"].post(url)
    assert TokenTest.objects.filter(tenant=tenant).count() == 1
    TokenTest.objects.update(status="failed")
    tenant.removal_confirmed_at = timezone.now()
    tenant.save()
    response = staff_clients["operator"].post(url, follow=True)
    assert b"removal is confirmed" in response.content and TokenTest.objects.count() == 1


@pytest.mark.django_db
def test_sweep_tests_every_active_tenant(staff_clients, make_tenant):
    active = [make_tenant(), make_tenant()]
    make_tenant(offboarded_at=timezone.now())
    make_tenant(consent_received_at=None)  # invited, never consented: nothing to prove yet
    url = reverse("onboarding:sweep-start")
    assert staff_clients["viewer"].post(url).status_code == 403
    response = staff_clients["operator"].post(url)
    sweep = Sweep.objects.get()
    assert response["Location"] == reverse("exchange:sweep-detail", kwargs={"pk": sweep.pk})
    assert sweep.total == 2 and sweep.running
    assert {t.tenant_id for t in sweep.tests.all()} == {t.pk for t in active}


@pytest.mark.django_db
def test_sweep_of_nothing_says_what_to_do(staff_clients):
    response = staff_clients["operator"].post(reverse("onboarding:sweep-start"), follow=True)
    assert b"No tenant to test yet" in response.content
    assert not Sweep.objects.get().running


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
    filtered = client.get(reverse("exchange:tokentest-list"), {"code": "70021"}, HTTP_HX_REQUEST="true",
                          HTTP_HX_TARGET="tokentest-rows")
    assert b"<html" not in filtered.content and b"AADSTS70021" in filtered.content
    assert b">verified<" not in filtered.content
    by_outcome = client.get(reverse("exchange:tokentest-list"), {"outcome": "verified"})
    assert [t.outcome for t in by_outcome.context["page"].object_list] == ["verified"]


@pytest.mark.django_db
def test_empty_list_explains_when_tests_run(staff_clients):
    assert b"Tests run when a customer consents" in staff_clients["viewer"].get(
        reverse("exchange:tokentest-list")).content
