"""Alert pages: history for viewers and up, channels and routes for admins only; every write audited; a webhook's
secret shown once, never in the audit trail or on a later page; no inline script or style."""
import re

import pytest
from django.urls import reverse

from ops import services
from ops.models import Alert, Channel, Delivery, Route
from portal.models import AuditEvent
from portal.services import Actor

LIST, SETTINGS = reverse("ops:alert-list"), reverse("ops:alert-settings")


@pytest.mark.parametrize(("role", "history", "settings_page"), [
    (None, 302, 302), ("viewer", 200, 403), ("operator", 200, 403), ("auditor", 403, 403), ("admin", 200, 200)])
def test_who_may_see(staff_clients, role, history, settings_page):
    assert staff_clients[role].get(LIST).status_code == history
    assert staff_clients[role].get(SETTINGS).status_code == settings_page


@pytest.mark.parametrize("role", ["viewer", "operator", "auditor"])
def test_only_admins_write(staff_clients, role):
    channel, _ = services.channel_create(actor=Actor.system("t"), name="m", kind="email", addresses=["a@x.example"])
    route = services.route_create(actor=Actor.system("t"), channel=channel)
    client = staff_clients[role]
    assert client.post(reverse("ops:channel-create"), {"name": "x", "kind": "email", "addresses": "b@x.example",
                                                       "format": "generic"}).status_code == 403
    assert client.post(reverse("ops:route-create"), {"channel": channel.pk}).status_code == 403
    assert client.post(reverse("ops:channel-delete", args=[channel.pk])).status_code == 403
    assert client.post(reverse("ops:route-delete", args=[route.pk])).status_code == 403
    assert Channel.objects.count() == 1 and Route.objects.count() == 1


def test_admin_creates_a_webhook_and_sees_its_secret_once(staff_clients, make_tenant):
    admin = staff_clients["admin"]
    response = admin.post(reverse("ops:channel-create"), {"name": "SOC Teams", "kind": "webhook", "format": "teams",
                                                          "url": "https://hooks.example/teams/1"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    channel = Channel.objects.get(name="SOC Teams")
    page = response.content.decode()
    assert channel.secret and channel.secret in page and "shown this once" in page
    assert channel.secret not in admin.get(SETTINGS).content.decode()
    customer = make_tenant().customer
    assert admin.post(reverse("ops:route-create"), {"channel": channel.pk, "customer": customer.pk,
                                                    "kinds": ["lost_access", "restored"]}).status_code == 302
    route = Route.objects.get()
    assert (route.customer_id, route.kinds) == (customer.pk, ["lost_access", "restored"])
    admin.post(reverse("ops:route-delete", args=[route.pk]))
    admin.post(reverse("ops:channel-delete", args=[channel.pk]))
    assert not Channel.objects.exists() and not Route.objects.exists()
    events = AuditEvent.objects.filter(action__startswith="alerts.").order_by("seq")
    assert [e.action for e in events] == ["alerts.channel_created", "alerts.route_created", "alerts.route_deleted",
                                          "alerts.channel_deleted"]
    assert all(e.actor_label == "admin-user" for e in events)
    assert not any(channel.secret in str(e.detail) for e in events)


def test_bad_channel_input_is_refused_clearly(staff_clients, settings):
    settings.ALERTS_WEBHOOK_ALLOW_HTTP = False
    admin = staff_clients["admin"]
    response = admin.post(reverse("ops:channel-create"), {"name": "m", "kind": "email", "addresses": "a@x, not-mail",
                                                          "format": "generic"})
    assert response.status_code == 400 and "is not an e-mail address" in response.content.decode()
    response = admin.post(reverse("ops:channel-create"), {"name": "h", "kind": "webhook", "format": "generic",
                                                          "url": "http://hooks.example/x"})
    assert response.status_code == 400 and "must be https" in response.content.decode()
    assert not Channel.objects.exists()


def test_history_shows_deliveries_and_pages(staff_clients):
    channel, _ = services.channel_create(actor=Actor.system("t"), name="NOC", kind="email", addresses=["a@x.example"])
    alerts = Alert.objects.bulk_create([Alert(kind="outage", dedupe_key=f"k{i}", title=f"Outage number {i}", text="x")
                                        for i in range(55)])
    Delivery.objects.create(alert=alerts[-1], channel=channel, channel_kind="email", status="failed", attempts=6,
                            last_error="mail not accepted (SMTPRecipientsRefused)")
    response = staff_clients["viewer"].get(LIST)
    page = response.content.decode()
    assert "55 alerts" in page and "mail not accepted" in page and "6 attempts" in page
    assert "Outage number 4<" not in page
    older = response.context["page"].older
    older_page = staff_clients["viewer"].get(LIST, {"older": older}).content.decode()
    assert "Outage number 4<" in older_page and "Outage number 54<" not in older_page and "← Newer" in older_page
    assert "No alerts yet" in staff_clients["viewer"].get(LIST + "?kind=restored").content.decode()


def test_templates_have_no_inline_script_or_style():
    from pathlib import Path

    for path in (Path(__file__).resolve().parents[2] / "templates" / "ops").glob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)|<style|style=\"|\son[a-z]+=", text), path.name
