"""A customer's page lists its tenants a page at a time (the biggest customers of an MSSP have hundreds)."""
import pytest
from django.urls import reverse

from onboarding.views import PAGE_SIZE


@pytest.mark.django_db
def test_a_customers_tenants_come_a_page_at_a_time(staff_clients, make_tenant):
    first = make_tenant(primary_domain="a000.example")
    for n in range(1, PAGE_SIZE + 3):
        make_tenant(customer=first.customer, primary_domain=f"a{n:03d}.example")
    client, url = staff_clients["viewer"], reverse("onboarding:customer-detail", kwargs={"pk": first.customer.pk})
    page = client.get(url)
    shown = [t.primary_domain for t in page.context["tenants"]]
    assert len(shown) == PAGE_SIZE and shown[0] == "a000.example"
    assert f"Page 1 of 2 · {PAGE_SIZE + 3} tenants" in page.content.decode()
    rest = client.get(url, {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="tenant-rows")
    assert b"<html" not in rest.content and [t.primary_domain for t in rest.context["tenants"]] == [
        f"a{n:03d}.example" for n in range(PAGE_SIZE, PAGE_SIZE + 3)]
