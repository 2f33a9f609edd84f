"""Writes of the ops app: the state watcher (alerts), deliveries (e-mail, signed webhooks), channels and routes."""
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections import defaultdict
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exchange.breaker import outages_open
from exchange.lint import ERROR, WARNING, lint_app
from onboarding.models import Customer
from ops import selectors
from ops.models import Alert, AlertKind, Channel, Delivery, FindingWatch, OutageWatch, Route, TenantWatch
from portal.services import Actor, audit_record

logger = logging.getLogger(__name__)
LOST_FROM, LOST_TO = ("verified",), ("failing", "no_role")
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Portal-Signature", "X-Portal-Timestamp"
_WATCH_LOCK_KEY = 0x6F70_7377  # "opsw"


class DeliveryError(Exception):
    pass


# --- the watcher ------------------------------------------------------------------------------------------------
def _label(row: dict) -> str:
    return row["primary_domain"] or str(row["tenant_id"])


def _tenant_alerts(now: datetime) -> list[Alert]:
    """Compare every tenant's state (one query) with the last state acted on (one query, as tuples); record the
    transitions in a few statements (one UPDATE per new state), whatever the number of tenants."""
    known = {pk: (state, consent_at, version) for pk, state, consent_at, version in
             TenantWatch.objects.values_list("tenant_id", "state", "consent_at", "version").iterator(chunk_size=5000)}
    recent_consent = now - timedelta(minutes=settings.ALERTS_CONSENT_RECENT_MINUTES)
    alerts, new, consents, moved = [], [], [], defaultdict(list)
    for row in selectors.tenant_rows():
        state, consent_at = selectors.tenant_state(row), row["consent_received_at"]
        watch = known.get(row["pk"])
        known_consent = watch[1] if watch else None
        consent_news = bool(consent_at) and (consent_at > known_consent if known_consent
                                             else consent_at >= recent_consent)
        if consent_news and not row["off"]:
            alerts.append(_tenant_alert(row, AlertKind.CONSENT, f"consent:{row['pk']}:{consent_at.isoformat()}",
                                        f"Consent received: {_label(row)}",
                                        f"The admin of {_label(row)} consented; the first token test follows."))
        if watch is None:
            new.append(TenantWatch(tenant_id=row["pk"], state=state or "draft", consent_at=consent_at,
                                   changed_at=now))
            continue
        if consent_news:
            consents.append(TenantWatch(tenant_id=row["pk"], consent_at=consent_at))
        was, version = watch[0], watch[2] + 1
        if not state or state == was:
            continue
        moved[state].append(row["pk"])
        if was in LOST_FROM and state in LOST_TO:
            alerts.append(_tenant_alert(
                row, AlertKind.LOST_ACCESS, f"tenant:{row['pk']}:{version}:lost_access", f"Access lost: {_label(row)}",
                f"The token test of {_label(row)} no longer verifies access (now: {state.replace('_', ' ')}, "
                f"outcome {row['last_outcome']}).", state=state))
        elif was in LOST_TO and state == "verified":
            alerts.append(_tenant_alert(
                row, AlertKind.RESTORED, f"tenant:{row['pk']}:{version}:restored", f"Access restored: {_label(row)}",
                f"The token test of {_label(row)} verifies access again.", state=state))
    TenantWatch.objects.bulk_create(new, ignore_conflicts=True, batch_size=5000)
    for state, pks in moved.items():
        for i in range(0, len(pks), 5000):
            TenantWatch.objects.filter(pk__in=pks[i:i + 5000]).update(state=state, version=F("version") + 1,
                                                                      changed_at=now)
    TenantWatch.objects.bulk_update(consents, ["consent_at"], batch_size=500)  # consents trickle in
    return alerts


def _tenant_alert(row: dict, kind: str, key: str, title: str, text: str, **facts) -> Alert:
    return Alert(kind=kind, dedupe_key=key, title=title, text=text, customer_id=row["customer_id"],
                 tenant_id=row["pk"], facts={"tenant": str(row["tenant_id"]), "domain": row["primary_domain"],
                                             "cloud": row["cloud"], "outcome": row["last_outcome"], **facts})


def _finding_alerts(now: datetime) -> list[Alert]:
    redirect_uri = settings.PORTAL_PUBLIC_URL + "/consent/callback/"
    seen: dict[str, tuple] = {}
    for app, fics, identities in selectors.lint_inputs():
        findings, per_fic = lint_app(app, fics=fics, identities=identities, portal_redirect_uri=redirect_uri)
        for finding in findings + [f for items in per_fic.values() for f in items]:
            if finding.severity in (ERROR, WARNING):
                key = f"{app.pk}:{finding.code}:{finding.fic_id or ''}:{finding.identity_id or ''}"
                seen[key] = (app, finding)
    known = {w.key: w for w in FindingWatch.objects.all()}
    alerts = []
    for key, (app, finding) in seen.items():
        watch = known.get(key)
        if watch is None or watch.resolved_at:
            if watch is None:
                watch = FindingWatch.objects.create(key=key, app_id=app.pk, code=finding.code, first_seen=now)
            else:
                FindingWatch.objects.filter(pk=watch.pk).update(first_seen=now, resolved_at=None)
            alerts.append(Alert(kind=AlertKind.FINDING, dedupe_key=f"finding:{key}:{now.isoformat()}",
                                title=f"Credential finding on {app.name}: {finding.code}",
                                text=f"{finding.message}\nFix: {finding.fix}",
                                facts={"app": app.name, "code": finding.code, "severity": finding.severity}))
    for key, watch in known.items():
        if key not in seen and watch.resolved_at is None:
            FindingWatch.objects.filter(pk=watch.pk).update(resolved_at=now)
            alerts.append(Alert(kind=AlertKind.FINDING_RESOLVED,
                                dedupe_key=f"finding_resolved:{key}:{watch.first_seen.isoformat()}",
                                title=f"Credential finding resolved: {watch.code}",
                                text=f"The finding {watch.code} of home app #{watch.app_id} is gone.",
                                facts={"code": watch.code}))
    return alerts


def _outages_observed(now: datetime) -> dict[tuple[str, str], dict]:
    """Open circuit breakers (exchange.breaker); for a cloud without one, many tenants' tests ending "transient"
    within ALERTS_OUTAGE_WINDOW_MINUTES count as an outage of the cloud's endpoints ("token_exchange")."""
    observed = {pair: {"since": outage.since.isoformat(), "tenants": outage.failures}
                for pair, outage in outages_open(now=now).items()}
    clouds_open = {cloud for cloud, _ in observed}
    since = now - timedelta(minutes=settings.ALERTS_OUTAGE_WINDOW_MINUTES)
    for cloud, n in selectors.transient_tenants_by_cloud(since=since).items():
        if n >= settings.ALERTS_OUTAGE_MIN_TENANTS and cloud not in clouds_open:
            observed[(cloud, "token_exchange")] = {"tenants": n}
    return observed


def _outage_alerts(now: datetime) -> list[Alert]:
    observed = _outages_observed(now)
    open_rows = {(o.cloud, o.endpoint): o for o in OutageWatch.objects.filter(closed_at=None)}
    alerts = []
    for (cloud, endpoint), facts in sorted(observed.items()):
        if (cloud, endpoint) in open_rows:
            continue
        row = OutageWatch.objects.create(cloud=cloud, endpoint=endpoint, opened_at=now)
        alerts.append(Alert(kind=AlertKind.OUTAGE, dedupe_key=f"outage:{cloud}:{endpoint}:{row.pk}",
                            title=f"Outage: {endpoint} ({cloud} cloud)",
                            text=f"Microsoft's {endpoint} endpoint ({cloud} cloud) fails for many tenants at once "
                                 f"({facts.get('tenants', '?')} within the window). Their tests are held or retried; "
                                 "this is not a fault of the tenants. One notice follows when it answers again.",
                            facts={"cloud": cloud, "endpoint": endpoint, **facts}))
    for (cloud, endpoint), row in open_rows.items():
        if (cloud, endpoint) not in observed:
            OutageWatch.objects.filter(pk=row.pk).update(closed_at=now)
            minutes = round((now - row.opened_at).total_seconds() / 60, 1)
            alerts.append(Alert(kind=AlertKind.OUTAGE_OVER, dedupe_key=f"outage_over:{row.pk}",
                                title=f"Outage over: {endpoint} ({cloud} cloud)",
                                text=f"Microsoft's {endpoint} endpoint ({cloud} cloud) answers again after "
                                     f"{minutes} minutes.",
                                facts={"cloud": cloud, "endpoint": endpoint, "minutes": minutes}))
    return alerts


def _watch_lock() -> bool:
    """One watcher at a time on PostgreSQL (a transaction-scoped advisory lock); SQLite serialises writers anyway."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_WATCH_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def alerts_watch(*, now: datetime | None = None) -> list[Alert]:
    """One pass of the state watcher: tenants' transitions, lint findings, outages; each new alert routed to its
    channels and its deliveries queued (after commit). Running twice at once raises nothing twice."""
    now = now or timezone.now()
    with transaction.atomic():
        if not _watch_lock():
            return []  # another watcher is at it (a beat tick overlapping a slow run)
        alerts = _tenant_alerts(now) + _finding_alerts(now) + _outage_alerts(now)
        created = _alerts_save(alerts)
        _deliveries_unstick(now)
    return created


def _alerts_save(alerts: list[Alert]) -> list[Alert]:
    """Save alerts new by their dedupe key; make their deliveries by the routes; send them after commit."""
    if not alerts:
        return []
    existing = set(Alert.objects.filter(dedupe_key__in=[a.dedupe_key for a in alerts])
                   .values_list("dedupe_key", flat=True))
    fresh = [a for a in alerts if a.dedupe_key not in existing]
    Alert.objects.bulk_create(fresh, ignore_conflicts=True)
    saved = list(Alert.objects.filter(dedupe_key__in=[a.dedupe_key for a in fresh]))
    routes = list(Route.objects.filter(channel__enabled=True).select_related("channel"))
    deliveries = []
    for alert in saved:
        channels = {route.channel_id: route.channel for route in routes if route.matches(alert)}
        deliveries += [Delivery(alert=alert, channel=channel, channel_kind=channel.kind) for channel in
                       channels.values()]
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    ids = list(Delivery.objects.filter(alert__in=saved, status=Delivery.Status.PENDING).values_list("pk", flat=True))
    _enqueue(ids)
    return saved


def _enqueue(delivery_ids: list[int], countdown: float | None = None) -> None:
    from ops.tasks import delivery_send  # the task module imports this one

    def send():
        for pk in delivery_ids:
            delivery_send.apply_async((pk,), countdown=countdown)

    if delivery_ids:
        transaction.on_commit(send)


def _deliveries_unstick(now: datetime) -> None:
    """A delivery left "sending" past its lease (its worker died) is pending again; overdue pending ones are sent
    again (their message was lost). A duplicate message is harmless: sending claims the delivery first."""
    Delivery.objects.filter(status=Delivery.Status.SENDING, next_attempt_at__lt=now).update(
        status=Delivery.Status.PENDING)
    _enqueue(selectors.deliveries_overdue(now=now, grace=timedelta(seconds=60)))


def digest_send(*, now: datetime | None = None) -> Alert | None:
    """The daily digest: alerts of the last 24 hours by kind and tenants by state (once per day)."""
    now = now or timezone.now()
    counts = selectors.alerts_since(since=now - timedelta(days=1))
    states = selectors.tenants_by_state()
    lines = [f"Alerts in the last 24 hours: {sum(counts.values())}"]
    lines += [f"  {AlertKind(kind).label}: {n}" for kind, n in sorted(counts.items())]
    lines += ["Tenants by state:"] + [f"  {state.replace('_', ' ')}: {n}" for state, n in states.items() if n]
    with transaction.atomic():
        saved = _alerts_save([Alert(kind=AlertKind.DIGEST, dedupe_key=f"digest:{now.date().isoformat()}",
                                    title=f"Daily digest {now.date().isoformat()}", text="\n".join(lines),
                                    facts={"alerts": counts, "tenants": states})])
    return saved[0] if saved else None


# --- delivery ---------------------------------------------------------------------------------------------------
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
        _enqueue([delivery_id], countdown=delay)
        return Delivery.Status.PENDING
    Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.SENT, sent_at=timezone.now(),
                                                   last_error="")
    return Delivery.Status.SENT


# --- channels and routes (admin) --------------------------------------------------------------------------------
def channel_create(*, actor: Actor, name: str, kind: str, addresses: list[str] | None = None, url: str = "",
                   format: str = Channel.Format.GENERIC) -> tuple[Channel, str]:
    """A channel; for a webhook, also its signing secret — returned here once, to be shown once."""
    secret = ""
    if kind == Channel.Kind.WEBHOOK:
        webhook_url_check(url)
        secret = secrets.token_urlsafe(32)
        addresses = []
    else:
        url, format = "", Channel.Format.GENERIC
    with transaction.atomic():
        channel = Channel.objects.create(name=name, kind=kind, addresses=addresses or [], url=url, format=format,
                                         secret=secret)
        audit_record(action="alerts.channel_created", actor=actor, target_type="alertchannel",
                     target_id=str(channel.pk),
                     detail={"name": name, "kind": kind, "target": channel.target, "format": format})
    return channel, secret


def channel_delete(*, channel: Channel, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(action="alerts.channel_deleted", actor=actor, target_type="alertchannel",
                     target_id=str(channel.pk), detail={"name": channel.name, "kind": channel.kind})
        channel.delete()


def route_create(*, actor: Actor, channel: Channel, customer: Customer | None = None,
                 kinds: list[str] | None = None) -> Route:
    with transaction.atomic():
        route = Route.objects.create(channel=channel, customer=customer, kinds=sorted(kinds or []))
        audit_record(action="alerts.route_created", actor=actor, target_type="alertroute", target_id=str(route.pk),
                     detail={"channel": channel.name, "customer": customer.name if customer else "all customers",
                             "kinds": route.kinds or "all"})
    return route


def route_delete(*, route: Route, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(action="alerts.route_deleted", actor=actor, target_type="alertroute", target_id=str(route.pk),
                     detail={"channel": route.channel.name,
                             "customer": route.customer.name if route.customer_id else "all customers"})
        route.delete()


def metrics_allowed(*, ip: str | None, authorization: str) -> bool:
    """The scraper's address is in METRICS_ALLOWED_CIDRS, or it presents METRICS_BEARER_TOKEN (when set)."""
    token = settings.METRICS_BEARER_TOKEN
    if token and authorization.startswith("Bearer ") and hmac.compare_digest(authorization[7:].encode(),
                                                                            token.encode()):
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in settings.METRICS_ALLOWED_CIDRS)

