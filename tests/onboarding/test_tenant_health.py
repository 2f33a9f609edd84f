"""A tenant's health (onboarding.receivers): only a definitive outcome moves it. A check that could not reach
Microsoft, or a new FIC still propagating, is kept as the tenant's last check beside its last definitive state —
an outage never paints a verified tenant red. An offboarded tenant's "not consented" confirms the removal."""
import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from emulator import world as demo
from exchange.models import Sweep, TokenTest
from exchange.services import token_test_execute
from exchange.signals import tenants_tested
from onboarding.models import CustomerTenant
from portal.models import AuditEvent
from tests.exchange.conftest import run_test


def _tested(tenant, outcome, at=None):
    """What exchange says when a test of the tenant finishes (exchange.services.outcomes.finish)."""
    tenants_tested.send(sender=TokenTest, tenant_pks=[tenant.pk], outcome=outcome, at=at or timezone.now())
    return CustomerTenant.objects.get(pk=tenant.pk)


def _health(tenant):
    return (tenant.status, tenant.last_outcome, tenant.consecutive_failures, tenant.failing_since,
            tenant.last_check_outcome, tenant.last_check_note)


@pytest.mark.parametrize("no_news, note", [("transient", "last check could not reach Microsoft"),
                                           ("propagating", "last check: new credential propagating")])
def test_no_news_keeps_the_verified_state_and_is_the_last_check(make_tenant, no_news, note):
    verified_at = timezone.now() - timedelta(hours=1)
    tenant = _tested(make_tenant(), "verified", at=verified_at)
    checked = _tested(tenant, no_news)
    assert _health(checked) == ("verified", "verified", 0, None, no_news, note)
    assert checked.last_tested_at == verified_at and checked.last_check_at > verified_at
    assert _health(_tested(checked, "verified"))[-1] == ""  # a definitive answer again: no note


def test_no_news_leaves_a_failing_tenants_count_and_date_alone(make_tenant):
    since = timezone.now() - timedelta(days=2)
    tenant = _tested(make_tenant(), "misconfigured", at=since)
    for _ in range(3):
        tenant = _tested(tenant, "transient")
    assert _health(tenant)[:4] == ("failing", "misconfigured", 1, since)
    tenant = _tested(tenant, "misconfigured")
    assert (tenant.consecutive_failures, tenant.failing_since) == (2, since)


def test_no_role_tenant_stays_no_role_through_an_outage(make_tenant):
    tenant = _tested(_tested(make_tenant(), "no_role"), "transient")
    assert tenant.status == "no_role" and tenant.status_label == "Consented, no Azure role"
    assert CustomerTenant.objects.with_status_in("no_role").get() == tenant  # the SQL rules agree


def test_a_tenant_never_answered_stays_consent_received(make_tenant):
    tenant = _tested(make_tenant(), "transient")
    assert _health(tenant)[:4] == ("consent_received", "", 0, None) and tenant.last_tested_at is None


def test_an_offboarded_tenants_not_consented_confirms_removal_not_a_failure(make_tenant):
    tenant = _tested(make_tenant(), "verified")
    CustomerTenant.objects.filter(pk=tenant.pk).update(offboarded_at=timezone.now())
    tenant = _tested(tenant, "not_consented")
    assert tenant.removal_confirmed_at and tenant.testing_ended
    assert (tenant.status, tenant.consecutive_failures, tenant.failing_since) == ("offboarded", 0, None)


def test_a_real_outage_keeps_the_tenant_verified_on_its_pages(portal_on_emulator, make_tenant, settings,
                                                              django_capture_on_commit_callbacks, staff_clients):
    settings.TOKEN_TEST_MAX_ATTEMPTS = 1  # the outage outlasts the test's attempts
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    assert run_test(tenant, django_capture_on_commit_callbacks).outcome == "verified"
    portal_on_emulator.control.faults(token={"fail_next": 10_000, "fail_status": 503, "retry_after": 0})
    test = run_test(tenant, django_capture_on_commit_callbacks)
    assert (test.status, test.outcome) == ("failed", "transient")
    tenant.refresh_from_db()
    assert _health(tenant)[:5] == ("verified", "verified", 0, None, "transient")
    client = staff_clients["viewer"]
    detail = client.get(reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk})).content.decode()
    assert '<span class="badge ok">Verified</span>' in detail and "last check could not reach Microsoft" in detail
    assert "failure" not in detail.split('class="tenant-health"')[1].split("</section>")[0]
    rows = client.get(reverse("onboarding:customer-detail", kwargs={"pk": tenant.customer_id})).content.decode()
    assert ">Verified</span><br><small class=\"last-check\">last check could not reach Microsoft" in rows


def test_migration_gives_back_the_last_definitive_outcome(make_tenant):
    verified_at, outage_at = timezone.now() - timedelta(hours=2), timezone.now() - timedelta(hours=1)
    tenant, never = make_tenant(), make_tenant()
    TokenTest.objects.create(tenant=tenant, trigger="sweep", status="succeeded", outcome="verified",
                             queued_at=verified_at, finished_at=verified_at)
    TokenTest.objects.create(tenant=tenant, trigger="sweep", status="failed", outcome="transient",
                             queued_at=outage_at, finished_at=outage_at)
    # As the receiver wrote them before: the outage in the tenant's last outcome, counted as a failure.
    CustomerTenant.objects.filter(pk__in=[tenant.pk, never.pk]).update(
        last_outcome="transient", last_tested_at=outage_at, consecutive_failures=1, failing_since=outage_at)
    importlib.import_module("onboarding.migrations.0003_tenant_last_check").last_check_from_history(apps, None)
    tenant.refresh_from_db()
    never.refresh_from_db()
    assert _health(tenant)[:5] == ("verified", "verified", 0, None, "transient")
    assert (tenant.last_tested_at, tenant.last_check_at) == (verified_at, outage_at)
    assert (never.status, never.last_outcome, never.last_tested_at, never.last_check_note) == (
        "consent_received", "", None, "last check could not reach Microsoft")


def test_an_outage_over_several_sweeps_is_audited_once_per_tenant(portal_on_emulator, make_tenant, settings):
    settings.TOKEN_TEST_MAX_ATTEMPTS = 1
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    portal_on_emulator.control.faults(token={"fail_next": 10_000, "fail_status": 503, "retry_after": 0})
    for _ in range(3):
        sweep = Sweep.objects.create(trigger="schedule", total=1)
        test = TokenTest.objects.create(tenant=tenant, trigger="sweep", sweep=sweep)
        token_test_execute(test_id=test.pk)
    assert list(TokenTest.objects.values_list("outcome", flat=True)) == ["transient"] * 3
    events = AuditEvent.objects.filter(action="tokentest.finished")
    assert [e.detail["previous"] for e in events] == [""]  # the first check that could not reach Microsoft only
