"""Customers and tenants: added by domain or tenant id through discovery; unknown and duplicate tenants refused."""
import pytest
from django.urls import reverse

from emulator import world as demo
from onboarding.models import Customer, CustomerTenant
from portal.models import AuditEvent


@pytest.fixture
def add_url(customer):
    return reverse("onboarding:tenant-add", kwargs={"pk": customer.pk})


def test_add_by_domain_resolves_the_tenant_id(portal_on_emulator, operator_client, customer, add_url):
    response = operator_client.post(add_url, {"domain_or_id": " Fabrikam.example ", "home_app": portal_on_emulator.app.pk})
    tenant = CustomerTenant.objects.get()
    assert response["Location"] == reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk})
    assert (str(tenant.tenant_id), tenant.primary_domain, tenant.region, tenant.cloud) == (
        demo.FABRIKAM, "fabrikam.example", "NA", "global")
    assert tenant.status == "draft"
    assert AuditEvent.objects.get(action="tenant.added").tenant_id == demo.FABRIKAM


def test_add_by_guid(portal_on_emulator, operator_client, add_url):
    operator_client.post(add_url, {"domain_or_id": demo.NORTHWIND.upper(), "home_app": portal_on_emulator.app.pk})
    assert str(CustomerTenant.objects.get().tenant_id) == demo.NORTHWIND


@pytest.mark.parametrize("entered, message", [
    ("nosuch.example", "No tenant named"),
    ("not a domain", "Enter a domain such as"),
    ("agency.example", "This tenant lives in Azure US Government"),
])
def test_unknown_tenants_are_refused_with_a_clear_message(portal_on_emulator, operator_client, add_url, entered,
                                                          message):
    response = operator_client.post(add_url, {"domain_or_id": entered, "home_app": portal_on_emulator.app.pk})
    assert response.status_code == 400 and message in response.content.decode()
    assert not CustomerTenant.objects.exists()


def test_us_gov_tenant_found_in_its_cloud(portal_on_emulator, operator_client, add_url):
    operator_client.post(add_url, {"domain_or_id": "agency.example", "home_app": portal_on_emulator.app.pk,
                                   "cloud": "usgov"})
    assert CustomerTenant.objects.get().region == "USG"


def test_duplicates_are_refused(portal_on_emulator, operator_client, add_url):
    other = Customer.objects.create(name="Someone else")
    operator_client.post(reverse("onboarding:tenant-add", kwargs={"pk": other.pk}),
                         {"domain_or_id": "fabrikam.example", "home_app": portal_on_emulator.app.pk})
    response = operator_client.post(add_url, {"domain_or_id": demo.FABRIKAM, "home_app": portal_on_emulator.app.pk})
    assert response.status_code == 400 and "already onboarded for Someone else" in response.content.decode()
    assert CustomerTenant.objects.count() == 1


def test_viewers_cannot_add(portal_on_emulator, staff_clients, add_url):
    response = staff_clients["viewer"].post(add_url, {"domain_or_id": "fabrikam.example",
                                                      "home_app": portal_on_emulator.app.pk})
    assert response.status_code == 403 and not CustomerTenant.objects.exists()


def test_create_customer_and_list_with_search(staff_clients):
    response = staff_clients["operator"].post(reverse("onboarding:customer-create"),
                                              {"name": "Contoso Ltd", "contact_email": "it@contoso.example"})
    customer = Customer.objects.get(name="Contoso Ltd")
    assert response["Location"] == reverse("onboarding:customer-detail", kwargs={"pk": customer.pk})
    duplicate = staff_clients["operator"].post(reverse("onboarding:customer-create"), {"name": "Contoso Ltd"})
    assert b"already exists" in duplicate.content and Customer.objects.count() == 1
    Customer.objects.create(name="Northwind")
    page = staff_clients["viewer"].get(reverse("onboarding:customer-list"), {"q": "conto"})
    assert b"Contoso Ltd" in page.content and b"Northwind" not in page.content and b"<html" in page.content
    fragment = staff_clients["viewer"].get(reverse("onboarding:customer-list"), {"q": "north"}, HTTP_HX_REQUEST="true",
                                           HTTP_HX_TARGET="customer-rows")
    assert b"<html" not in fragment.content and b"Northwind" in fragment.content


def test_empty_customer_list_says_what_to_do(staff_clients):
    page = staff_clients["operator"].get(reverse("onboarding:customer-list")).content.decode()
    assert "No customers yet" in page and "No home app is registered yet" in page
