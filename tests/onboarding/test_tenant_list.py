"""The tenants page: every tenant across customers, with filters (status through the one SQL definition, customer,
cloud, region, tag), search, sort both ways, pages, htmx fragments, empty states, and a query count that does not grow
with the rows; its CSV export (streamed, formula-guarded, audited)."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from onboarding import tenant_selectors
from onboarding.models import Customer
from onboarding.tags import tags_get_or_create
from portal.models import AuditEvent

URL = reverse("onboarding:tenant-list")


@pytest.fixture
def fleet(make_tenant):
    """Five tenants of three customers in every interesting state."""
    now = timezone.now()
    contoso, fabrikam = Customer.objects.create(name="Contoso"), Customer.objects.create(name="Fabrikam")
    contoso.tags.set(tags_get_or_create(["tier-1"]))
    t = {
        "verified": make_tenant(customer=contoso, primary_domain="a.contoso.example", last_outcome="verified",
                                region="EU", last_success_at=now - timedelta(hours=1)),
        "no_role": make_tenant(customer=contoso, primary_domain="b.contoso.example", last_outcome="no_role",
                               region="NA"),
        "failing": make_tenant(customer=fabrikam, primary_domain="fabrikam.example", last_outcome="not_consented",
                               failing_since=now - timedelta(days=2), last_success_at=now - timedelta(days=3),
                               region="NA", display_name="Fabrikam HQ"),
        "draft": make_tenant(customer=fabrikam, primary_domain="draft.fabrikam.example", consent_received_at=None),
        "usgov": make_tenant(primary_domain="agency.example", cloud="usgov", region="USGov", display_name="Agency"),
    }
    t["failing"].tags.set(tags_get_or_create(["pilot"]))
    return t


def _listed(client, **params) -> list[str]:
    response = client.get(URL, params)
    assert response.status_code == 200
    return [t.primary_domain for t, _ in response.context["rows"]]


@pytest.mark.parametrize("role, status", [(None, 302), ("viewer", 200), ("operator", 200), ("auditor", 403)])
def test_who_may_see_it(staff_clients, role, status):
    assert staff_clients[role].get(URL).status_code == status


def test_columns_and_default_order(staff_clients, fleet):
    page = staff_clients["viewer"].get(URL)
    body = page.content.decode()
    assert _listed(staff_clients["viewer"]) == ["a.contoso.example", "b.contoso.example", "agency.example",
                                                "draft.fabrikam.example", "fabrikam.example"]
    for text in ("Verified", "Failing", "Draft", "Azure US Government", "tier-1", "pilot", "USGov"):
        assert text in body
    # A tenant carries its customer's tags: both Contoso tenants show tier-1; Fabrikam's failing one its own pilot.
    rows = dict((t.primary_domain, tags) for t, tags in page.context["rows"])
    assert rows["b.contoso.example"] == ["tier-1"] and rows["fabrikam.example"] == ["pilot"]
    assert "Tenants</a>" in body and 'aria-current="page">Tenants' in body  # in the nav, current


@pytest.mark.parametrize("params, expected", [
    ({"status": "verified"}, ["a.contoso.example"]),
    ({"status": "failing"}, ["fabrikam.example"]),
    ({"status": "draft"}, ["draft.fabrikam.example"]),
    ({"cloud": "usgov"}, ["agency.example"]),
    ({"region": "NA"}, ["b.contoso.example", "fabrikam.example"]),
    ({"tag": "tier-1"}, ["a.contoso.example", "b.contoso.example"]),
    ({"tag": "pilot", "region": "NA"}, ["fabrikam.example"]),
    ({"q": "fabrikam hq"}, ["fabrikam.example"]),
    ({"q": "contoso"}, ["a.contoso.example", "b.contoso.example"]),
    ({"q": "aaaaaaaa-0000-4000-8000-000000000005"}, ["agency.example"]),
    ({"status": "nonsense"}, None),  # an invalid value is ignored, not an error
])
def test_filters_and_search(staff_clients, fleet, params, expected):
    listed = _listed(staff_clients["viewer"], **params)
    assert listed == (expected if expected is not None else _listed(staff_clients["viewer"]))


def test_customer_filter_and_status_agrees_with_the_property(staff_clients, fleet):
    fabrikam = fleet["failing"].customer
    response = staff_clients["viewer"].get(URL, {"customer": fabrikam.pk})
    assert {t.primary_domain for t, _ in response.context["rows"]} == {"fabrikam.example", "draft.fabrikam.example"}
    for tenant, _ in response.context["rows"]:
        assert tenant.state == tenant.status


def test_past_the_limit_the_customer_filter_lists_only_the_chosen_customer(staff_clients, fleet, monkeypatch):
    monkeypatch.setattr(tenant_selectors, "CUSTOMER_CHOICES_MAX", 2)  # the fleet has three customers
    fabrikam = fleet["failing"].customer
    response = staff_clients["viewer"].get(URL, {"customer": fabrikam.pk})
    page = response.content.decode()
    assert {t.primary_domain for t, _ in response.context["rows"]} == {"fabrikam.example", "draft.fabrikam.example"}
    assert f'<option value="{fabrikam.pk}" selected>Fabrikam</option>' in page and ">Contoso</option>" not in page
    assert "Find the customer</a>: too many to list here" in page
    unfiltered = staff_clients["viewer"].get(URL, {"customer": "x"}).content.decode()
    assert ">Fabrikam</option>" not in unfiltered and "agency.example" in unfiltered
    monkeypatch.setattr(tenant_selectors, "CUSTOMER_CHOICES_MAX", 3)
    page = staff_clients["viewer"].get(URL).content.decode()
    assert ">Contoso</option>" in page and ">Fabrikam</option>" in page and "too many to list" not in page


@pytest.mark.parametrize("sort, expected", [
    ("domain", ["a.contoso.example", "agency.example", "b.contoso.example", "draft.fabrikam.example",
                "fabrikam.example"]),
    ("-verified", ["a.contoso.example", "fabrikam.example"]),  # most recent first, never-verified last
    ("failing", ["fabrikam.example"]),
    ("status", ["draft.fabrikam.example", "agency.example", "a.contoso.example", "b.contoso.example",
                "fabrikam.example"]),  # in the lifecycle's order: draft … verified, no role, failing
])
def test_sort_both_ways(staff_clients, fleet, sort, expected):
    listed = _listed(staff_clients["viewer"], sort=sort)
    assert listed[:len(expected)] == expected
    reverse_listed = _listed(staff_clients["viewer"], sort=sort[1:] if sort.startswith("-") else f"-{sort}")
    assert reverse_listed == list(reversed(listed))


def test_pages_keep_the_filters_and_the_query_count_does_not_grow(staff_clients, make_tenant):
    customer = Customer.objects.create(name="Big")
    customer.tags.set(tags_get_or_create(["eu"]))
    for n in range(60):
        tenant = make_tenant(customer=customer, primary_domain=f"t{n:03d}.example", region="EU")
        tenant.tags.set(tags_get_or_create([f"own-{n % 3}"]))
    client = staff_clients["viewer"]
    client.get(URL)  # warm first: the cached reads (regions, the banners) and the session's first write
    with CaptureQueriesContext(connection) as first:
        page1 = client.get(URL, {"tag": "eu", "sort": "domain"})
    assert len(page1.context["rows"]) == 50 and "Page 1 of 2 · 60 tenants" in page1.content.decode()
    with CaptureQueriesContext(connection) as second:
        page2 = client.get(URL, {"tag": "eu", "sort": "domain", "page": 2})
    assert [t.primary_domain for t, _ in page2.context["rows"]] == [f"t{n:03d}.example" for n in range(50, 60)]
    assert len(first) == len(second)  # 50 rows or 10: the same queries (tags prefetched, no N+1)
    assert 'href="?tag=eu&amp;sort=domain&amp;page=2"' in page1.content.decode()


def test_htmx_gets_the_rows_only(staff_clients, fleet):
    response = staff_clients["viewer"].get(URL, {"status": "verified"}, HTTP_HX_REQUEST="true",
                                           HTTP_HX_TARGET="tenant-rows")
    body = response.content.decode()
    assert "a.contoso.example" in body and "<h1>" not in body and response["Vary"].count("HX-Request")


def test_empty_states(staff_clients, db):
    assert "No tenants yet." in staff_clients["operator"].get(URL).content.decode()
    assert "No tenant matches these filters." in staff_clients["operator"].get(URL, {"q": "zzz"}).content.decode()


def test_archived_customers_tenants_hidden_unless_asked(staff_clients, fleet):
    Customer.objects.filter(name="Contoso").update(archived_at=timezone.now())
    assert "a.contoso.example" not in _listed(staff_clients["viewer"])
    assert "a.contoso.example" in _listed(staff_clients["viewer"], archived="on")
    contoso = Customer.objects.get(name="Contoso")
    assert _listed(staff_clients["viewer"], archived="on", customer=contoso.pk) == ["a.contoso.example",
                                                                                   "b.contoso.example"]


def test_export_streams_the_filtered_tenants_formula_guarded_and_audited(staff_clients, fleet):
    Customer.objects.filter(name="Fabrikam").update(name="=HYPERLINK(\"http://evil\")")
    response = staff_clients["viewer"].get(reverse("onboarding:tenant-export"), {"region": "NA", "sort": "domain"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("customer,domain,display_name,tenant_id,cloud,region,status,tags")
    assert len(lines) == 3
    assert lines[1].startswith("Contoso,b.contoso.example,,aaaaaaaa-0000-4000-8000-000000000002,global,NA,no_role,"
                               "tier-1,")
    assert lines[2].startswith("\"'=HYPERLINK(\"\"http://evil\"\")\",fabrikam.example,Fabrikam HQ,")
    assert ",failing,pilot," in lines[2]
    event = AuditEvent.objects.get(action="tenant.exported")
    assert event.detail["filters"] == {"region": "NA", "sort": "domain"}
