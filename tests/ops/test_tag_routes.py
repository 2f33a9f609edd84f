"""Routing by tag: a route with a tag gets the alerts of the tenants carrying it (their own tag or their customer's)
and of the customers carrying it, nothing else; set from the routes form by an admin."""
from datetime import timedelta

from django.core import mail
from django.urls import reverse
from django.utils import timezone

from onboarding.models import Customer
from onboarding.tags import tags_get_or_create
from ops import forms as ops_forms
from ops import services
from ops.models import Alert, Route
from portal.models import AuditEvent
from portal.services import Actor

ADMIN = Actor.system("test")


def _channel(name, address):
    channel, _ = services.channel_create(actor=ADMIN, name=name, kind="email", addresses=[address])
    return channel


def test_a_tag_route_receives_only_its_tenants_alerts(make_tenant, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    services.route_create(actor=ADMIN, channel=_channel("tier one", "tier1@mssp.example"), tag="tier-1")
    services.route_create(actor=ADMIN, channel=_channel("everyone", "noc@mssp.example"))
    tagged_customer = Customer.objects.create(name="Tagged customer")
    tagged_customer.tags.set(tags_get_or_create(["tier-1"]))
    earlier = timezone.now() - timedelta(days=2)
    via_customer = make_tenant(customer=tagged_customer, consent_received_at=earlier, last_outcome="verified")
    own = make_tenant(consent_received_at=earlier, last_outcome="verified")
    own.tags.set(tags_get_or_create(["tier-1"]))
    other = make_tenant(consent_received_at=earlier, last_outcome="verified")
    with django_capture_on_commit_callbacks(execute=True):
        services.alerts_watch()  # first sight: no alert
    type(own).objects.filter(pk__in=[via_customer.pk, own.pk, other.pk]).update(last_outcome="no_role")
    with django_capture_on_commit_callbacks(execute=True):
        created = services.alerts_watch()
    assert sorted(a.tenant_id for a in created if a.kind == "lost_access") == sorted([via_customer.pk, own.pk,
                                                                                       other.pk])
    to_tier1 = [m.subject for m in mail.outbox if m.to == ["tier1@mssp.example"]]
    to_noc = [m.subject for m in mail.outbox if m.to == ["noc@mssp.example"]]
    assert sorted(to_tier1) == sorted(f"[{settings.PORTAL_BRAND_NAME}] Access lost: {t.primary_domain}"
                                      for t in (via_customer, own))
    assert len(to_noc) == 3


def test_a_tag_route_matches_by_the_alerts_tags_and_kinds():
    route = Route(tag="tier-1")
    tagged = Alert(kind="lost_access", customer_id=1)
    assert route.matches(tagged, tags=frozenset({"tier-1", "eu"}))
    assert not route.matches(tagged, tags=frozenset({"eu"}))
    assert not route.matches(Alert(kind="outage"))  # alerts of no customer go to untagged routes only
    assert not Route(tag="tier-1", kinds=["restored"]).matches(tagged, tags=frozenset({"tier-1"}))


def test_admin_sets_the_tag_in_the_routes_form(staff_clients):
    tags_get_or_create(["tier-1"])
    channel = _channel("mail", "a@mssp.example")
    admin = staff_clients["admin"]
    assert admin.post(reverse("ops:route-create"), {"channel": channel.pk, "tag": "tier-1"}).status_code == 302
    assert Route.objects.get().tag == "tier-1"
    assert AuditEvent.objects.get(action="alerts.route_created").detail["tag"] == "tier-1"
    page = admin.get(reverse("ops:alert-settings")).content.decode()
    assert 'href="/tenants/?tag=tier-1"' in page
    refused = admin.post(reverse("ops:route-create"), {"channel": channel.pk, "tag": "no-such-tag"})
    assert refused.status_code == 400 and Route.objects.count() == 1


def test_past_the_limit_a_route_names_its_customer(staff_clients, monkeypatch):
    monkeypatch.setattr(ops_forms, "CUSTOMERS_LISTED_MAX", 1)
    contoso, _ = Customer.objects.create(name="Contoso"), Customer.objects.create(name="Fabrikam")
    channel = _channel("mail", "a@mssp.example")
    admin = staff_clients["admin"]
    page = admin.get(reverse("ops:alert-settings")).content.decode()
    assert ">Fabrikam</option>" not in page and "The customer&#x27;s exact name" in page
    assert admin.post(reverse("ops:route-create"), {"channel": channel.pk, "customer": "Contoso"}).status_code == 302
    assert Route.objects.get().customer == contoso
    refused = admin.post(reverse("ops:route-create"), {"channel": channel.pk, "customer": "Contoso Ltd"})
    assert refused.status_code == 400 and Route.objects.count() == 1
    monkeypatch.setattr(ops_forms, "CUSTOMERS_LISTED_MAX", 2)
    assert ">Fabrikam</option>" in admin.get(reverse("ops:alert-settings")).content.decode()
