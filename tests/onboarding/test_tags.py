"""Tags: set at onboarding (customer form, add-tenant form) and in bulk import (with the cloud column), refused
clearly when malformed, shown and filtered on, and scoping a sweep to the tenants that carry them (their own or
their customer's)."""
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from emulator import world as demo
from exchange.models import Sweep, TokenTest
from onboarding import tags
from onboarding.models import Customer, CustomerTenant
from onboarding.tags import tags_get_or_create, tags_parse
from portal.models import AuditEvent


def test_tags_parse_lowercases_dedupes_and_refuses_bad_names():
    assert tags_parse(" Tier-1, eu;pilot  EU ") == ["eu", "pilot", "tier-1"]
    assert tags_parse("") == []
    with pytest.raises(ValidationError, match="Not a tag: -dash, a/b"):
        tags_parse("ok, a/b, -dash")
    with pytest.raises(ValidationError, match="at most 20"):
        tags_parse(" ".join(f"t{n}" for n in range(21)))


def test_customer_created_with_tags(staff_clients, db):
    response = staff_clients["operator"].post(reverse("onboarding:customer-create"),
                                              {"name": "Contoso", "tags": "tier-1 eu"})
    customer = Customer.objects.get()
    assert response.status_code == 302 and sorted(customer.tags.values_list("name", flat=True)) == ["eu", "tier-1"]
    assert AuditEvent.objects.get(action="customer.created").detail["tags"] == ["eu", "tier-1"]
    page = staff_clients["viewer"].get(reverse("onboarding:customer-list"), {"tag": "eu"}).content.decode()
    assert "Contoso" in page and 'href="/tenants/?tag=tier-1"' in page
    assert "Contoso" not in staff_clients["viewer"].get(reverse("onboarding:customer-list"),
                                                        {"tag": "nope"}).content.decode()


def test_tenant_added_with_tags(portal_on_emulator, operator_client):
    customer = Customer.objects.create(name="Fabrikam")
    response = operator_client.post(reverse("onboarding:tenant-add", args=[customer.pk]), {
        "domain_or_id": "fabrikam.example", "home_app": portal_on_emulator.app.pk, "tags": "pilot"})
    tenant = CustomerTenant.objects.get()
    assert response.status_code == 302 and list(tenant.tags.values_list("name", flat=True)) == ["pilot"]
    assert AuditEvent.objects.get(action="tenant.added").detail["tags"] == ["pilot"]


def test_bulk_import_with_cloud_and_tags_columns(portal_on_emulator, operator_client):
    csv = (f"customer,domain_or_tenant_id,cloud,tags\n"
           f"Fabrikam,fabrikam.example,,tier-1 eu\n"
           f"Agency,agency.example,usgov,gov\n"
           f"Northwind,{demo.NORTHWIND},global,\n").encode()
    page = operator_client.post(reverse("onboarding:bulk-import"), {
        "file": SimpleUploadedFile("t.csv", csv, content_type="text/csv"), "home_app": portal_on_emulator.app.pk})
    assert page.status_code == 200 and "3 created, 0 refused" in page.content.decode()
    tenants = {t.primary_domain or str(t.tenant_id): t for t in CustomerTenant.objects.all()}
    assert tenants["agency.example"].cloud == "usgov"
    assert sorted(tenants["fabrikam.example"].tags.values_list("name", flat=True)) == ["eu", "tier-1"]
    assert list(tenants["agency.example"].tags.values_list("name", flat=True)) == ["gov"]
    assert not tenants[demo.NORTHWIND].tags.exists()


def test_bulk_import_refuses_a_bad_cloud_or_tag_by_line_and_column(portal_on_emulator, operator_client):
    csv = b"customer,domain_or_tenant_id,cloud,tags\nA,a.example,mars,\nB,b.example,,Bad!Tag\n"
    page = operator_client.post(reverse("onboarding:bulk-import"), {
        "file": SimpleUploadedFile("t.csv", csv, content_type="text/csv"), "home_app": portal_on_emulator.app.pk})
    body = page.content.decode()
    assert page.status_code == 400
    assert "Line 2, column cloud: “mars” is not a cloud; one of global" in body
    assert "Line 3, column tags: Not a tag: bad!tag" in body
    assert not Customer.objects.exists()


def test_a_tag_scoped_sweep_tests_only_the_tagged_tenants(staff_clients, make_tenant):
    tagged_customer = Customer.objects.create(name="Tier one")
    tagged_customer.tags.set(tags_get_or_create(["tier-1"]))
    by_customer = make_tenant(customer=tagged_customer)
    own = make_tenant()
    own.tags.set(tags_get_or_create(["tier-1"]))
    make_tenant()  # untagged: not tested
    response = staff_clients["operator"].post(reverse("onboarding:sweep-start"), {"tag": "tier-1"}, follow=True)
    sweep = Sweep.objects.get()
    assert sweep.total == 2 and "Testing 2 tenants tagged “tier-1”." in response.content.decode()
    assert set(TokenTest.objects.filter(sweep=sweep).values_list("tenant_id", flat=True)) == {by_customer.pk, own.pk}
    assert AuditEvent.objects.get(action="sweep.scoped").detail == {"tag": "tier-1", "tenants": 2}


def test_a_sweep_for_an_unknown_tag_starts_nothing(staff_clients, make_tenant):
    make_tenant()
    response = staff_clients["operator"].post(reverse("onboarding:sweep-start"), {"tag": "nope"}, follow=True)
    assert "No tag “nope”: no sweep started." in response.content.decode() and not Sweep.objects.exists()


def test_a_tenants_page_shows_its_own_and_its_customers_tags(staff_clients, make_tenant):
    tenant = make_tenant()
    tenant.tags.set(tags_get_or_create(["pilot"]))
    tenant.customer.tags.set(tags_get_or_create(["tier-1"]))
    body = staff_clients["viewer"].get(reverse("onboarding:tenant-detail", args=[tenant.pk])).content.decode()
    assert 'href="/tenants/?tag=pilot"' in body and 'href="/tenants/?tag=tier-1"' in body


def test_bulk_import_names_the_cloud_column_when_a_tenant_lives_in_another_cloud(portal_on_emulator, operator_client):
    csv = b"customer,domain_or_tenant_id\nAgency,agency.example\n"
    page = operator_client.post(reverse("onboarding:bulk-import"), {
        "file": SimpleUploadedFile("t.csv", csv, content_type="text/csv"), "home_app": portal_on_emulator.app.pk})
    assert "lives in Azure US Government, not in Azure (global): give that cloud in the file&#x27;s cloud column" in (
        page.content.decode())


def test_effective_tags_in_chunks_own_and_inherited(make_tenant, monkeypatch):
    monkeypatch.setattr(tags, "CHUNK", 2)  # several chunks with a handful of rows
    customer = Customer.objects.create(name="Tagged")
    customer.tags.set(tags_get_or_create(["tier-1"]))
    tenants = [make_tenant(customer=customer) for _ in range(3)] + [make_tenant() for _ in range(2)]
    tenants[0].tags.set(tags_get_or_create(["pilot"]))
    by_tenant, by_customer = tags.effective_tags(tenant_ids=[t.pk for t in tenants], customer_ids=[customer.pk])
    assert by_tenant == {tenants[0].pk: {"pilot", "tier-1"}, tenants[1].pk: {"tier-1"}, tenants[2].pk: {"tier-1"},
                         tenants[3].pk: set(), tenants[4].pk: set()}
    assert by_customer[customer.pk] == {"tier-1"}
