"""The tenant picker of the token tests' filter: a search answering at most 20 tenants, each a link back to the list
with its filters kept; for staff who may view (anonymous: sign in; auditors: 403)."""
import re
from html import unescape

import pytest
from django.urls import reverse

PICKER = reverse("onboarding:tenant-picker")
LIST = reverse("exchange:tokentest-list")


def links(html: str) -> list[str]:
    matches = re.search(r'<ul class="tenant-matches">(.*?)</ul>', html, re.S)
    return [unescape(h) for h in re.findall(r'<li><a href="([^"]+)"', matches.group(1))] if matches else []


@pytest.mark.django_db
def test_the_picker_answers_at_most_twenty_matches_as_links_keeping_the_filters(staff_clients, make_tenant):
    tenants = [make_tenant(primary_domain=f"fabrikam{n:02d}.example") for n in range(25)]
    make_tenant(primary_domain="contoso.example")
    response = staff_clients["viewer"].get(PICKER, {"q": "fabrikam", "next": f"{LIST}?status=failed&older=1_2",
                                                    "outcome": "verified", "code": ""}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    found = links(html)
    assert len(found) == 20 and "type more to narrow them down" in html
    assert found[0] == f"{LIST}?status=failed&outcome=verified&tenant={tenants[0].pk}"  # no cursor, no empty field
    assert "contoso" not in html


@pytest.mark.django_db
def test_the_picker_finds_by_customer_or_tenant_id_and_says_when_nothing_matches(staff_clients, make_tenant):
    tenant = make_tenant(primary_domain="northwind.example")
    client = staff_clients["viewer"]
    by_id = client.get(PICKER, {"q": str(tenant.tenant_id)[-12:], "next": LIST}).content.decode()
    assert links(by_id) == [f"{LIST}?tenant={tenant.pk}"] and "<html" in by_id  # a page of its own without htmx
    assert links(client.get(PICKER, {"q": tenant.customer.name}).content.decode()) == [f"{LIST}?tenant={tenant.pk}"]
    assert "No tenant matches" in client.get(PICKER, {"q": "nowhere"}).content.decode()


@pytest.mark.django_db
def test_the_picker_links_only_to_this_site(staff_clients, make_tenant):
    tenant = make_tenant(primary_domain="northwind.example")
    html = staff_clients["viewer"].get(PICKER, {"q": "northwind", "next": "https://evil.example/x"}).content.decode()
    assert links(html) == [f"{LIST}?tenant={tenant.pk}"]


@pytest.mark.django_db
def test_the_picker_is_for_staff_who_may_view(staff_clients, make_tenant):
    make_tenant(primary_domain="northwind.example")
    assert staff_clients[None].get(PICKER, {"q": "north"}).status_code == 302
    assert staff_clients["auditor"].get(PICKER, {"q": "north"}).status_code == 403
    for role in ("viewer", "operator", "admin"):
        assert staff_clients[role].get(PICKER, {"q": "north"}).status_code == 200
