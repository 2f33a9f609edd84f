"""Offboarding: tests stop, links are revoked, the customer's removal steps are shown and confirmed by a 700016."""
from django.urls import reverse

from emulator import world as demo
from exchange.services import token_test_start
from onboarding.models import ConsentLink
from onboarding.selectors import active_tenants
from onboarding.services import consent_link_issue
from portal.models import AuditEvent
from portal.services import Actor


def test_offboard_stops_tests_and_confirms_removal(portal_on_emulator, make_tenant, staff_clients,
                                                   django_capture_on_commit_callbacks):
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    link, _ = consent_link_issue(tenant=tenant, actor=Actor.system("test"))
    url = reverse("onboarding:tenant-offboard", kwargs={"pk": tenant.pk})
    assert b"Offboard the tenant" in staff_clients["operator"].get(url).content  # a confirmation first
    assert staff_clients["viewer"].post(url).status_code == 403
    staff_clients["operator"].post(url)
    tenant.refresh_from_db()
    link.refresh_from_db()
    assert tenant.status == "offboarded" and link.outcome == ConsentLink.Outcome.REVOKED
    assert tenant not in active_tenants()
    page = staff_clients["viewer"].get(reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk})).content.decode()
    assert "Enterprise applications" in page and "Removal not confirmed yet" in page
    # The customer deletes the app; the next test finds it gone (AADSTS700016), which confirms the removal.
    portal_on_emulator.control.revoke_consent(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    with django_capture_on_commit_callbacks(execute=True):
        token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    tenant.refresh_from_db()
    assert tenant.removal_confirmed_at is not None
    page = staff_clients["viewer"].get(reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk})).content.decode()
    assert "Removal confirmed" in page
    assert AuditEvent.objects.filter(action="tenant.offboarded", tenant_id=demo.FABRIKAM).exists()
