"""Access profiles: admins create and edit them (audited, one default), everyone on staff reads them, operators choose
a customer's; bad input is refused with a clear message and nothing saved."""
import pytest
from django.urls import reverse

from exchange.models import AccessProfile
from onboarding.models import Customer
from portal.models import AuditEvent

DCR = ("/subscriptions/e1000000-0000-4000-8000-000000000001/resourceGroups/monitoring/providers/"
       "Microsoft.Insights/dataCollectionRules/dcr-syslog")


def test_the_migration_made_the_default_profile(db):
    default = AccessProfile.objects.get(is_default=True)
    assert default.grants == [{"role": "Reader", "scope": "*"}]
    assert default.grants_described == ["Reader on every subscription it can see"]


def test_an_admin_creates_a_profile_from_lines(staff_clients):
    response = staff_clients["admin"].post(reverse("exchange:access-profile-create"), {
        "name": "Monitoring", "grants_text": f"Reader on every subscription\nMonitoring Metrics Publisher on {DCR}\n"})
    assert response.status_code == 302
    profile = AccessProfile.objects.get(name="Monitoring")
    assert profile.grants == [{"role": "Reader", "scope": "*"}, {"role": "Monitoring Metrics Publisher", "scope": DCR}]
    event = AuditEvent.objects.get(action="accessprofile.created")
    assert event.target_id == str(profile.pk) and "Monitoring Metrics Publisher" in event.detail["grants"]
    listing = staff_clients["viewer"].get(reverse("exchange:access-profiles")).content.decode()
    assert f"Monitoring Metrics Publisher on {DCR}" in listing


@pytest.mark.parametrize("text, problem", [
    ("Reader everywhere", "write “ROLE on SCOPE”"),
    ("Reader on subscriptions/abc", "is not an ARM scope"),
    ("Re'ader on every subscription", "write “ROLE on SCOPE”"),
    ("  \n", "This field is required"),
])
def test_bad_lines_are_refused_and_nothing_is_saved(staff_clients, text, problem):
    response = staff_clients["admin"].post(reverse("exchange:access-profile-create"),
                                           {"name": "Broken", "grants_text": text})
    assert response.status_code == 400 and problem in response.content.decode()
    assert not AccessProfile.objects.filter(name="Broken").exists()


def test_making_another_profile_the_default_unsets_the_old_one(staff_clients):
    old = AccessProfile.objects.get(is_default=True)
    response = staff_clients["admin"].post(reverse("exchange:access-profile-create"), {
        "name": "Monitoring", "grants_text": "Monitoring Reader on every subscription", "is_default": "on"})
    assert response.status_code == 302
    assert list(AccessProfile.objects.filter(is_default=True).values_list("name", flat=True)) == ["Monitoring"]
    edit = reverse("exchange:access-profile-edit", args=[old.pk])
    assert "Reader on every subscription" in staff_clients["admin"].get(edit).content.decode()
    staff_clients["admin"].post(edit, {"name": old.name, "grants_text": "Reader on every subscription",
                                       "is_default": "on"})
    assert AccessProfile.objects.get(is_default=True) == old
    assert AuditEvent.objects.filter(action="accessprofile.updated", target_id=str(old.pk)).exists()


@pytest.mark.parametrize("role, status", [("viewer", 403), ("operator", 403), ("auditor", 403), (None, 302)])
def test_only_admins_edit_profiles(staff_clients, role, status):
    assert staff_clients[role].get(reverse("exchange:access-profile-create")).status_code == status


def test_an_operator_chooses_a_customers_agreed_access(staff_clients):
    customer = Customer.objects.create(name="Contoso")
    profile = AccessProfile.objects.create(name="Monitoring", grants=[{"role": "Monitoring Reader", "scope": "*"}])
    url = reverse("onboarding:customer-access-profile", args=[customer.pk])
    assert staff_clients["viewer"].post(url, {"access_profile": profile.pk}).status_code == 403
    assert staff_clients["operator"].post(url, {"access_profile": profile.pk}).status_code == 302
    customer.refresh_from_db()
    assert customer.access_profile == profile
    event = AuditEvent.objects.get(action="customer.access_profile_set")
    assert event.detail["changes"] == {"access_profile": ["default", "Monitoring"]}
    page = staff_clients["operator"].get(reverse("onboarding:customer-detail", args=[customer.pk])).content.decode()
    assert "Monitoring Reader on every subscription it can see" in page
    staff_clients["operator"].post(url, {"access_profile": "999999"})  # not a profile: refused, nothing changed
    customer.refresh_from_db()
    assert customer.access_profile == profile
    staff_clients["operator"].post(url, {"access_profile": ""})
    customer.refresh_from_db()
    assert customer.access_profile is None
