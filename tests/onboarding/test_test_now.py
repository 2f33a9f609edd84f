"""Test now (a tenant) and start a sweep (every active tenant): who may, what they queue, and when they refuse."""
import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.models import Sweep, TokenTest
from onboarding.tasks import sweep_scheduled
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
def test_the_beat_schedule_sweeps_every_active_tenant(make_tenant, settings):
    active = make_tenant()
    make_tenant(offboarded_at=timezone.now())
    assert settings.CELERY_BEAT_SCHEDULE["token-test-sweep"]["task"] == sweep_scheduled.name
    sweep_scheduled.delay()
    sweep = Sweep.objects.get()
    assert sweep.trigger == Sweep.Trigger.SCHEDULE and sweep.started_by is None
    assert [t.tenant_id for t in sweep.tests.all()] == [active.pk]
    assert AuditEvent.objects.get(action="sweep.started").actor_label == "beat"
