"""Deliveries: signed webhooks in each format, bounded retries with backoff, no redirects, https only in production,
a claimed delivery is never sent twice."""
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from ops import services
from ops.models import Alert, Delivery
from portal.services import Actor

ADMIN = Actor.system("test")


def _alert_to(channel, capture, key="k1"):
    services.route_create(actor=ADMIN, channel=channel)
    with capture(execute=True):
        alert = services.alerts_save([Alert(kind="outage", dedupe_key=key, title="Outage: arm_probe (global cloud)",
                                             text="line one\nline two", facts={"cloud": "global"})])[0]
    return Delivery.objects.get(alert=alert, channel=channel)


@pytest.mark.parametrize("fmt", ["generic", "slack", "teams"])
def test_payload_shapes(fmt, db, webhook_receiver, django_capture_on_commit_callbacks):
    channel, secret = services.channel_create(actor=ADMIN, name=fmt, kind="webhook", url=webhook_receiver.url,
                                              format=fmt)
    webhook_receiver.secret = secret
    delivery = _alert_to(channel, django_capture_on_commit_callbacks)
    assert delivery.status == "sent"
    [request] = webhook_receiver.received
    assert request["verified"] and request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    if fmt == "generic":
        assert body["kind"] == "outage" and body["facts"] == {"cloud": "global"}
    elif fmt == "slack":
        assert body == {"text": "*Outage: arm_probe (global cloud)*\nline one\nline two"}
    else:
        assert body["@type"] == "MessageCard" and body["title"].startswith("Outage") and "<br>" in body["text"]


def test_a_wrong_secret_does_not_verify(db, webhook_receiver, django_capture_on_commit_callbacks):
    channel, secret = services.channel_create(actor=ADMIN, name="h", kind="webhook", url=webhook_receiver.url)
    webhook_receiver.secret = secret + "x"
    _alert_to(channel, django_capture_on_commit_callbacks)
    assert webhook_receiver.received[0]["verified"] is False
    timestamp = webhook_receiver.received[0]["headers"]["X-Portal-Timestamp"]
    body = json.dumps(webhook_receiver.received[0]["json"], separators=(",", ":")).encode()
    assert services.signature(secret, timestamp, body) == webhook_receiver.received[0]["headers"]["X-Portal-Signature"]


def test_retries_with_backoff_then_gives_up(db, settings, webhook_receiver, django_capture_on_commit_callbacks):
    settings.ALERTS_DELIVERY_MAX_ATTEMPTS, settings.ALERTS_RETRY_BASE_SECONDS = 3, 30
    webhook_receiver.status = 503
    channel, webhook_receiver.secret = services.channel_create(actor=ADMIN, name="h", kind="webhook",
                                                               url=webhook_receiver.url)
    delivery = _alert_to(channel, django_capture_on_commit_callbacks)
    # The retry's task ran at once (eager) but the delivery was not due: one request, then pending with backoff.
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "webhook answered HTTP 503")
    assert len(webhook_receiver.received) == 1
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 25 < wait <= 30
    later = timezone.now() + timedelta(seconds=31)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.delivery_send(delivery_id=delivery.pk, now=later) == "pending"
    delivery.refresh_from_db()
    assert 55 < (delivery.next_attempt_at - later).total_seconds() <= 60  # doubled
    with django_capture_on_commit_callbacks(execute=True):
        assert services.delivery_send(delivery_id=delivery.pk, now=later + timedelta(seconds=61)) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 3) and len(webhook_receiver.received) == 3


def test_redirects_are_not_followed(db, webhook_receiver, django_capture_on_commit_callbacks):
    webhook_receiver.status, webhook_receiver.location = 302, "http://127.0.0.1:9/elsewhere"
    channel, webhook_receiver.secret = services.channel_create(actor=ADMIN, name="h", kind="webhook",
                                                               url=webhook_receiver.url)
    delivery = _alert_to(channel, django_capture_on_commit_callbacks)
    assert delivery.status == "pending" and "redirects are not followed" in delivery.last_error
    assert [r["path"] for r in webhook_receiver.received] == ["/hook"]


def test_https_only_in_production(db, settings):
    settings.ALERTS_WEBHOOK_ALLOW_HTTP = False
    with pytest.raises(ValidationError):
        services.channel_create(actor=ADMIN, name="h", kind="webhook", url="http://hooks.example/x")
    channel, secret = services.channel_create(actor=ADMIN, name="h", kind="webhook", url="https://hooks.example/x")
    assert len(secret) >= 40 and channel.secret == secret


def test_a_claimed_delivery_is_sent_once(db, settings, django_capture_on_commit_callbacks):
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel, _ = services.channel_create(actor=ADMIN, name="m", kind="email", addresses=["a@x.example"])
    delivery = _alert_to(channel, django_capture_on_commit_callbacks)
    assert delivery.status == "sent" and len(mail.outbox) == 1
    Delivery.objects.filter(pk=delivery.pk).update(status="sending")  # another worker holds it
    assert services.delivery_send(delivery_id=delivery.pk) is None
    assert services.delivery_send(delivery_id=delivery.pk) is None
    assert len(mail.outbox) == 1


def test_a_stuck_delivery_is_sent_again_after_its_lease(db, settings, django_capture_on_commit_callbacks):
    """A worker died while sending: once the lease is over, the watcher makes it pending and sends it again."""
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel, _ = services.channel_create(actor=ADMIN, name="m", kind="email", addresses=["a@x.example"])
    delivery = _alert_to(channel, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    past = timezone.now() - timedelta(minutes=5)
    Delivery.objects.filter(pk=delivery.pk).update(status="sending", sent_at=None, next_attempt_at=past)
    with django_capture_on_commit_callbacks(execute=True):
        services.alerts_watch()  # unsticks it: pending again, overdue, sent again
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2) and len(mail.outbox) == 1


def test_a_disabled_channel_gets_no_delivery(db, settings, django_capture_on_commit_callbacks):
    channel, _ = services.channel_create(actor=ADMIN, name="m", kind="email", addresses=["a@x.example"])
    channel.enabled = False
    channel.save()
    services.route_create(actor=ADMIN, channel=channel)
    with django_capture_on_commit_callbacks(execute=True):
        services.alerts_save([Alert(kind="outage", dedupe_key="k", title="t", text="t")])
    assert not Delivery.objects.exists()
