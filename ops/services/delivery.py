"""Delivery of one alert to one channel: e-mail (Django's mail framework) or a webhook (JSON, HMAC-signed, in the
formats Slack and Teams accept), claimed first, retried with backoff."""
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db.models import F
from django.utils import timezone

from ops.models import Alert, Channel, Delivery
from ops.services.routing import enqueue

logger = logging.getLogger(__name__)
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Portal-Signature", "X-Portal-Timestamp"


class DeliveryError(Exception):
    pass


def payload_for(alert: Alert, fmt: str) -> dict:
    if fmt == Channel.Format.SLACK:
        return {"text": f"*{alert.title}*\n{alert.text}"}
    if fmt == Channel.Format.TEAMS:
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": alert.title,
                "themeColor": "2E7D32" if alert.kind in ("restored", "outage_over", "finding_resolved") else "C62828",
                "title": alert.title, "text": alert.text.replace("\n", "<br>"),
                "sections": [{"facts": [{"name": k, "value": str(v)} for k, v in alert.facts.items()]}]}
    return {"id": alert.pk, "kind": alert.kind, "title": alert.title, "text": alert.text, "facts": alert.facts,
            "customer": alert.customer.name if alert.customer_id else None, "created_at": alert.created_at.isoformat()}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """sha256=<hex> of HMAC-SHA256(secret, timestamp + "." + body)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_url_check(url: str) -> None:
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.ALERTS_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise ValidationError("A webhook URL must be https://… (http only while DJANGO_DEBUG is on).")


def _send_webhook(delivery: Delivery) -> None:
    channel = delivery.channel
    webhook_url_check(channel.url)
    body = json.dumps(payload_for(delivery.alert, channel.format), separators=(",", ":"), default=str).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "keyless-portal-alerts",
               TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(channel.secret, timestamp, body),
               "X-Portal-Delivery": str(delivery.pk)}
    try:
        response = requests.post(channel.url, data=body, headers=headers, allow_redirects=False,
                                 timeout=settings.ALERTS_WEBHOOK_TIMEOUT)
    except requests.RequestException as exc:
        raise DeliveryError(f"webhook unreachable ({type(exc).__name__})") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"webhook answered HTTP {response.status_code}"
                            + (" (redirects are not followed)" if 300 <= response.status_code < 400 else ""))


def _send_email(delivery: Delivery) -> None:
    alert = delivery.alert
    facts = "\n".join(f"{k}: {v}" for k, v in alert.facts.items())
    message = EmailMessage(subject=f"[{settings.PORTAL_BRAND_NAME}] {alert.title}",
                           body=f"{alert.text}\n\n{facts}\n\n{settings.PORTAL_PUBLIC_URL}/alerts/",
                           from_email=settings.DEFAULT_FROM_EMAIL, to=delivery.channel.addresses,
                           headers={"X-Portal-Alert": alert.dedupe_key})
    try:
        message.send()
    except OSError as exc:  # smtplib's errors are OSErrors
        raise DeliveryError(f"mail not accepted ({type(exc).__name__})") from exc


def _backoff(attempts: int) -> float:
    return min(settings.ALERTS_RETRY_MAX_SECONDS, settings.ALERTS_RETRY_BASE_SECONDS * 2 ** (attempts - 1))


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """Send one delivery once: claimed first (pending and due → sending), so a duplicated task sends nothing.
    Returns the new status, or None when there was nothing to send."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now,
                                      channel__isnull=False).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1,
        next_attempt_at=now + timedelta(seconds=settings.ALERTS_SENDING_LEASE_SECONDS))
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("alert__customer", "channel").get(pk=delivery_id)
    try:
        if not delivery.channel.enabled:
            raise DeliveryError("channel disabled")
        (_send_email if delivery.channel.kind == Channel.Kind.EMAIL else _send_webhook)(delivery)
    except (DeliveryError, ValidationError) as exc:
        error = str(exc.message if isinstance(exc, ValidationError) else exc)[:300]
        if delivery.attempts >= settings.ALERTS_DELIVERY_MAX_ATTEMPTS or not delivery.channel.enabled:
            Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.FAILED, last_error=error)
            logger.warning("alert delivery %s failed for good: %s", delivery_id, error)
            return Delivery.Status.FAILED
        delay = _backoff(delivery.attempts)
        Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.PENDING, last_error=error,
                                                       next_attempt_at=now + timedelta(seconds=delay))
        enqueue([delivery_id], countdown=delay)
        return Delivery.Status.PENDING
    Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.SENT, sent_at=timezone.now(),
                                                   last_error="")
    return Delivery.Status.SENT
