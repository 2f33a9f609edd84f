"""The template kit: one pager (`_pagination.html`) that keeps the filters, one form field (`_field.html`) with its
aria attributes, polled regions inside live status regions, a public base without staff navigation for the consent
pages, one h1 and ordered headings on every page, a skip link, and the brand from settings."""
import itertools
from html.parser import HTMLParser

import pytest
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from portal.context_processors import branding

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """The elements of a page, each with its attributes and the attributes of its ancestors."""

    def __init__(self, html: str):
        super().__init__()
        self.stack: list[dict] = []
        self.elements: list[tuple[str, dict, list[dict]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attrs, [dict(a) for a in self.stack]))
        if tag not in VOID:
            self.stack.append({"tag": tag, **attrs})

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                break

    def find(self, tag=None, **attrs):
        return [(t, a, up) for t, a, up in self.elements
                if (tag is None or t == tag) and all(a.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())]

    def headings(self) -> list[int]:
        return [int(t[1]) for t, _, _ in self.elements if len(t) == 2 and t[0] == "h" and t[1].isdigit()]


def _polled(page: Page):
    return [(t, a, up) for t, a, up in page.elements if "every" in a.get("hx-trigger", "")]


def _in_live_status_region(ancestors: list[dict]) -> bool:
    return any(a.get("role") == "status" and a.get("aria-live") == "polite" for a in ancestors)


# --- the pager --------------------------------------------------------------------------------------------------------
def test_the_pager_changes_only_the_page_and_keeps_every_filter():
    request = RequestFactory().get("/things/", {"status": "failing", "q": "north wind", "page": "2"})
    page = Paginator(list(range(30)), 10).get_page(2)
    html = render_to_string("_pagination.html", {"page": page, "target": "#thing-rows", "noun": "things"},
                            request=request)
    links = Page(html).find("a")
    assert [a["href"] for _, a, _ in links] == ["?status=failing&q=north+wind&page=1",
                                                 "?status=failing&q=north+wind&page=3"]
    for _, a, _ in links:  # htmx swaps the rows; the href is there for a plain click, new tab or no JavaScript
        assert a["hx-get"] == a["href"] and a["hx-target"] == "#thing-rows" and a["hx-push-url"] == "true"
    assert "Page 2 of 3 · 30 things" in html


def test_the_customer_list_pages_through_its_search_and_htmx_gets_the_rows(operator_client):
    from onboarding.models import Customer

    Customer.objects.bulk_create([Customer(name=f"Acme {n:02d}") for n in range(30)]
                                 + [Customer(name=f"Other {n}") for n in range(5)])
    first = Page(operator_client.get(reverse("onboarding:customer-list"), {"q": "Acme"}).content.decode())
    (_, link, _), = first.find("a", rel="next")
    assert link["href"] == "?q=Acme&page=2" and link["hx-get"] == link["href"]
    assert link["hx-target"] == "#customer-rows"
    rows = operator_client.get(reverse("onboarding:customer-list") + link["hx-get"],
                               headers={"HX-Request": "true", "HX-Target": "customer-rows"})
    body = rows.content.decode()
    assert "<html" not in body and "Acme 29" in body and "Other" not in body and "Page 2 of 2 · 30 customers" in body
    (_, back, _), = Page(body).find("a", rel="prev")
    assert back["href"] == "?q=Acme&page=1"


def test_the_token_test_list_and_the_audit_trail_keep_their_filters_in_the_pager(admin_client_portal, make_tenant):
    from exchange.models import TokenTest
    from portal.services import Actor, audit_record_many

    tenant = make_tenant()
    now = timezone.now()
    TokenTest.objects.bulk_create([TokenTest(tenant=tenant, trigger="manual", status="failed", outcome="no_role",
                                             diagnosis_code="AuthorizationFailed", started_at=now, finished_at=now)
                                   for _ in range(55)])
    page = Page(admin_client_portal.get(reverse("exchange:tokentest-list"), {"outcome": "no_role"}).content.decode())
    (_, link, _), = page.find("a", rel="next")
    assert link["href"].startswith("?outcome=no_role&older=") and link["hx-target"] == "#tokentest-rows"

    audit_record_many([{"action": "test.kit", "actor": Actor.system("kit"), "detail": {"n": n}} for n in range(55)])
    html = admin_client_portal.get(reverse("portal:audit-list"), {"action": "test.kit", "page": "1"}).content.decode()
    audit = Page(html)
    (_, older, _), = audit.find("a", rel="next")
    assert older["href"].startswith("?action=test.kit&older=") and older["hx-target"] == "#audit-rows"
    (_, export, _), = [f for f in audit.find("form") if f[1].get("action", "").startswith("/exports/")]
    assert export["action"] == reverse("ops:export-start", args=["audit"]) + "?action=test.kit"  # the page's filters


# --- the form field ---------------------------------------------------------------------------------------------------
def test_an_invalid_customer_form_marks_the_field_and_names_its_error(operator_client):
    response = operator_client.post(reverse("onboarding:customer-create"), {"name": ""})
    page = Page(response.content.decode())
    (_, name, _), = page.find("input", name="name")
    assert name["aria-invalid"] == "true" and name["aria-describedby"] == "id_name_error"
    (_, errors, _), = page.find(id="id_name_error")
    assert "field-errors" in errors["class"] and errors["role"] == "alert"
    assert "This field is required." in response.content.decode()
    assert page.find("label", for_="id_name")
    (_, email, _), = page.find("input", name="contact_email")
    assert "aria-invalid" not in email and "aria-describedby" not in email  # a valid field is left alone


def test_an_invalid_tenant_add_describes_the_field_by_its_help_and_its_error(operator_client, make_tenant):
    customer = make_tenant().customer
    response = operator_client.post(reverse("onboarding:tenant-add", args=[customer.pk]), {"domain_or_id": ""})
    assert response.status_code == 400
    page = Page(response.content.decode())
    (_, field, _), = page.find("input", name="domain_or_id")
    assert field["aria-invalid"] == "true"
    assert field["aria-describedby"] == "id_domain_or_id_helptext id_domain_or_id_error"
    assert page.find(id="id_domain_or_id_helptext") and page.find("div", id="id_domain_or_id_error")


def test_a_group_of_choices_is_a_fieldset_described_by_its_help_and_its_error():
    from django import forms

    class KindForm(forms.Form):
        kind = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], widget=forms.RadioSelect, help_text="Pick one.")
        ok = forms.BooleanField(required=False)

    form = KindForm({})
    assert not form.is_valid()
    page = Page("".join(render_to_string("_field.html", {"field": field}) for field in form))
    (_, fieldset, _), = page.find("fieldset")
    assert fieldset["aria-describedby"] == "id_kind_helptext id_kind_error" and "invalid" in fieldset["class"]
    assert page.find("legend") and page.find("div", id="id_kind_error") and page.find("small", id="id_kind_helptext")
    (_, checkbox, ancestors), = page.find("input", name="ok")
    assert ancestors[-1]["tag"] == "label" and "aria-invalid" not in checkbox  # a checkbox sits inside its label


def test_form_errors_are_styled_to_stand_out():
    from django.conf import settings

    css = (settings.BASE_DIR / "static" / "portal" / "portal.css").read_text()
    rule = css[css.index(".field-errors, .form-errors {"):].split("}", 1)[0]
    assert "font-weight: 600" in rule and "background" in rule and "border-left" in rule


# --- live regions -----------------------------------------------------------------------------------------------------
def test_every_polled_region_sits_in_a_live_status_region(pages_world, admin_client_portal, make_tenant):
    from exchange.models import Sweep, TokenTest

    running_sweep = Sweep.objects.create(trigger="manual", total=3, done=1, succeeded=1)
    queued = TokenTest.objects.create(tenant=make_tenant(), trigger="manual", status="queued")
    staff = [reverse("exchange:sweep-detail", args=[running_sweep.pk]),
             reverse("exchange:tokentest-detail", args=[queued.pk])]
    polled_pages = 0
    for url, client in [(u, admin_client_portal) for u in staff + pages_world.staff_pages] + [
            (pages_world.progress, Client())]:
        page = Page(client.get(url).content.decode())
        for tag, attrs, ancestors in _polled(page):
            assert _in_live_status_region(ancestors), (url, tag, attrs.get("id"))
        polled_pages += bool(_polled(page))
    assert polled_pages == 3  # the running sweep, the queued test and the consent landing page's verification


# --- the public base --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("signed_in", [False, True])
def test_the_consent_landing_page_has_no_staff_navigation(pages_world, make_staff, signed_in):
    client = Client()
    if signed_in:  # staff trying a customer's link see what the customer sees
        client.force_login(make_staff("admin"))
    for url in [reverse("onboarding:consent-callback"), pages_world.progress]:
        html = client.get(url).content.decode()
        page = Page(html)
        hrefs = {a["href"] for _, a, _ in page.find("a") if "href" in a}
        assert hrefs <= {"#content"}, (url, hrefs)  # the skip link, nothing of the portal
        assert "Sign out" not in html and not page.find("form") and "X-CSRFToken" not in html
        assert page.headings().count(1) == 1 and page.find(id="content")


# --- the brand --------------------------------------------------------------------------------------------------------
def test_the_brand_comes_from_settings(settings, pages_world, operator_client):
    settings.PORTAL_BRAND_NAME = "Fabrikam Security"
    settings.PORTAL_BRAND_LOGO_URL = "https://cdn.example.com/fabrikam.png"
    settings.PORTAL_CONTACT_EMAIL = "onboarding@fabrikam.example"
    assert branding(RequestFactory().get("/")) == {"branding": {
        "name": "Fabrikam Security", "logo_url": "https://cdn.example.com/fabrikam.png",
        "contact_email": "onboarding@fabrikam.example"}}
    landing = Client().get(reverse("onboarding:consent-callback")).content.decode()
    page = Page(landing)
    (_, logo, _), = page.find("img", src="https://cdn.example.com/fabrikam.png")
    assert logo["alt"] == "Fabrikam Security" and "<title>Fabrikam Security · Consent</title>" in landing
    assert page.find("a", href="mailto:onboarding@fabrikam.example")
    assert "the exact link Fabrikam Security sent you" in landing
    issued = operator_client.post(reverse("onboarding:consent-link-issue", args=[pages_world.tenant.pk]))
    assert "To let Fabrikam Security manage your Azure tenant" in issued.content.decode()

    settings.PORTAL_BRAND_LOGO_URL = ""
    settings.PORTAL_CONTACT_EMAIL = ""
    plain = Page(Client().get(reverse("onboarding:consent-callback")).content.decode())
    assert not plain.find("img") and not plain.find("footer")
    (_, _, _), = plain.find("p", **{"class": "brand-name"})


# --- headings and the skip link ---------------------------------------------------------------------------------------
def test_every_staff_page_has_one_h1_ordered_headings_and_a_skip_link(pages_world, admin_client_portal):
    for url in pages_world.staff_pages:
        page = Page(admin_client_portal.get(url).content.decode())
        levels = page.headings()
        assert levels and levels[0] == 1 and levels.count(1) == 1, (url, levels)
        assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), (url, levels)  # no level skipped going down
        (_, skip, _), = page.find("a", **{"class": "skip-link"})
        assert skip["href"] == "#content" and page.find("main", id="content")
