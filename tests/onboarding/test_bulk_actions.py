"""Bulk actions on the tenants page's selection: each refuses the tenants that cannot take it (with the reason) and
does the others; each is audited; viewers may not; offboarding asks first."""
from html import escape

import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.models import TokenTest
from onboarding.models import ConsentLink, Customer, CustomerTenant
from onboarding.tags import tags_get_or_create
from portal.models import AuditEvent

URL = reverse("onboarding:tenant-bulk")


@pytest.fixture
def pair(make_tenant):
    """Two tenants of one customer able to take any action, and one offboarded (app removal confirmed)."""
    customer = Customer.objects.create(name="Contoso", contact_name="Ada Admin", contact_email="ada@contoso.example")
    ok1 = make_tenant(customer=customer, primary_domain="one.contoso.example")
    ok2 = make_tenant(customer=customer, primary_domain="two.contoso.example")
    gone = make_tenant(primary_domain="gone.example", offboarded_at=timezone.now(),
                       removal_confirmed_at=timezone.now())
    return ok1, ok2, gone


def _post(client, action, tenants, **extra):
    return client.post(URL, {"action": action, "tenants": [t.pk for t in tenants], "back": "?status=draft", **extra})


def test_viewers_may_not(staff_clients, pair):
    assert _post(staff_clients["viewer"], "test_now", pair).status_code == 403
    assert not TokenTest.objects.exists()


def test_issue_links_one_message_per_customer_and_the_offboarded_refused(staff_clients, pair):
    ok1, ok2, gone = pair
    response = _post(staff_clients["operator"], "issue_links", pair)
    body = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "Issue consent links: 2 done, 1 refused" in body
    assert "gone.example" in body and "offboarded: no consent link can be issued" in body
    messages = response.context["by_customer"]
    assert [(customer.name, [i.tenant for i in links]) for customer, links in messages] == [("Contoso", [ok1, ok2])]
    assert body.count('data-copy="message-') == 1 and "Hello Ada Admin," in body
    for issued in messages[0][1]:
        assert escape(issued.url) in body and "/adminconsent?" in issued.url
    assert ConsentLink.objects.filter(tenant__in=[ok1, ok2]).count() == 2 and not gone.consent_links.exists()
    event = AuditEvent.objects.get(action="tenant.bulk_issue_links")
    assert sorted(event.detail["done"]) == sorted([str(ok1.tenant_id), str(ok2.tenant_id)])
    assert list(event.detail["refused"]) == [str(gone.tenant_id)]
    assert AuditEvent.objects.filter(action="consent_link.issued").count() == 2


def test_test_now_refuses_the_offboarded_and_the_already_running(staff_clients, pair):
    ok1, ok2, gone = pair
    TokenTest.objects.create(tenant=ok2, trigger="manual")  # queued
    response = _post(staff_clients["operator"], "test_now", pair)
    body = response.content.decode()
    assert "Test now: 1 done, 2 refused" in body
    assert "a token test is already queued" in body and "it is not tested" in body
    assert TokenTest.objects.filter(tenant=ok1).count() == 1 and TokenTest.objects.filter(tenant=gone).count() == 0


def test_offboard_asks_first_then_offboards_and_refuses_the_already_offboarded(staff_clients, pair):
    ok1, ok2, gone = pair
    client = staff_clients["operator"]
    confirm = _post(client, "offboard", pair)
    body = confirm.content.decode()
    assert "Offboard 2 tenants?" in body and "stop its token tests" in body and "Already offboarded" in body
    assert not CustomerTenant.objects.filter(pk=ok1.pk, offboarded_at__isnull=False).exists()
    done = _post(client, "offboard", pair, confirmed="on")
    assert "Offboard: 2 done, 1 refused" in done.content.decode() and "already offboarded." in done.content.decode()
    assert CustomerTenant.objects.filter(offboarded_at__isnull=False).count() == 3
    assert AuditEvent.objects.filter(action="tenant.offboarded").count() == 2


def test_tags_added_and_removed_an_inherited_tag_refused(staff_clients, pair):
    ok1, ok2, gone = pair
    client = staff_clients["operator"]
    assert "Add a tag: 3 done" in _post(client, "tag_add", pair, tag="Tier-1").content.decode()
    assert set(CustomerTenant.objects.filter(tags__name="tier-1").values_list("pk", flat=True)) == {
        ok1.pk, ok2.pk, gone.pk}
    ok1.customer.tags.set(tags_get_or_create(["eu"]))
    ok2.tags.remove(*ok2.tags.all())
    response = _post(client, "tag_remove", pair, tag="tier-1")
    body = response.content.decode()
    assert "Remove a tag: 2 done, 1 refused" in body and "does not carry “tier-1”" in body
    body = _post(client, "tag_remove", [ok1], tag="eu").content.decode()
    assert "comes from its customer Contoso: remove it there" in body
    assert AuditEvent.objects.filter(action__in=["tenant.bulk_tag_add", "tenant.bulk_tag_remove"]).count() == 3


@pytest.mark.parametrize("data, message", [
    ({"action": "test_now"}, "Select at least one tenant."),
    ({"action": "tag_add", "tenants": [1]}, "Name one tag to add or remove."),
    ({"action": "tag_add", "tenants": [1], "tag": "two tags"}, "Name one tag"),
    ({"action": "explode", "tenants": [1]}, "Select a valid choice"),
])
def test_bad_input_goes_back_to_the_list_with_a_clear_message(staff_clients, pair, data, message):
    response = staff_clients["operator"].post(URL, {**data, "back": "?status=draft"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("onboarding:tenant-list") + "?status=draft"
    assert message in response.content.decode()
