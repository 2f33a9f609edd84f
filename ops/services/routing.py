"""Routing of alerts: each new alert (new by its dedupe key) saved, matched against the routes (by customer, by tag
— the tenant's own or its customer's — and by kind), its deliveries made and queued after commit; the daily digest."""
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from onboarding.tags import effective_tags
from ops import selectors
from ops.models import Alert, AlertKind, Delivery, Route


def _alert_tags(alerts: list[Alert]) -> dict[int, frozenset[str]]:
    """Each alert's tags (by its pk): its tenant's effective tags, else its customer's; a few queries for all."""
    by_tenant, by_customer = effective_tags(tenant_ids=[a.tenant_id for a in alerts if a.tenant_id],
                                            customer_ids=[a.customer_id for a in alerts if a.customer_id])
    return {a.pk: frozenset(by_tenant.get(a.tenant_id) or by_customer.get(a.customer_id) or ()) for a in alerts}


def alerts_save(alerts: list[Alert]) -> list[Alert]:
    """Save alerts new by their dedupe key; make their deliveries by the routes; send them after commit."""
    if not alerts:
        return []
    existing = set(Alert.objects.filter(dedupe_key__in=[a.dedupe_key for a in alerts])
                   .values_list("dedupe_key", flat=True))
    fresh = [a for a in alerts if a.dedupe_key not in existing]
    Alert.objects.bulk_create(fresh, ignore_conflicts=True)
    saved = list(Alert.objects.filter(dedupe_key__in=[a.dedupe_key for a in fresh]))
    routes = list(Route.objects.filter(channel__enabled=True).select_related("channel"))
    tags = _alert_tags(saved) if any(route.tag for route in routes) else {}
    deliveries = []
    for alert in saved:
        channels = {route.channel_id: route.channel for route in routes
                    if route.matches(alert, tags=tags.get(alert.pk, frozenset()))}
        deliveries += [Delivery(alert=alert, channel=channel, channel_kind=channel.kind) for channel in
                       channels.values()]
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    ids = list(Delivery.objects.filter(alert__in=saved, status=Delivery.Status.PENDING).values_list("pk", flat=True))
    enqueue(ids)
    return saved


def enqueue(delivery_ids: list[int], countdown: float | None = None) -> None:
    from ops.tasks import delivery_send  # the task module imports this one

    def send():
        for pk in delivery_ids:
            delivery_send.apply_async((pk,), countdown=countdown)

    if delivery_ids:
        transaction.on_commit(send)


def deliveries_unstick(now: datetime) -> None:
    """A delivery left "sending" past its lease (its worker died) is pending again; overdue pending ones are sent
    again (their message was lost). A duplicate message is harmless: sending claims the delivery first."""
    Delivery.objects.filter(status=Delivery.Status.SENDING, next_attempt_at__lt=now).update(
        status=Delivery.Status.PENDING)
    enqueue(selectors.deliveries_overdue(now=now, grace=timedelta(seconds=60)))


def digest_send(*, now: datetime | None = None) -> Alert | None:
    """The daily digest: alerts of the last 24 hours by kind and tenants by state (once per day)."""
    now = now or timezone.now()
    counts = selectors.alerts_since(since=now - timedelta(days=1))
    states = selectors.tenants_by_state()
    lines = [f"Alerts in the last 24 hours: {sum(counts.values())}"]
    lines += [f"  {AlertKind(kind).label}: {n}" for kind, n in sorted(counts.items())]
    lines += ["Tenants by state:"] + [f"  {state.replace('_', ' ')}: {n}" for state, n in states.items() if n]
    with transaction.atomic():
        saved = alerts_save([Alert(kind=AlertKind.DIGEST, dedupe_key=f"digest:{now.date().isoformat()}",
                                    title=f"Daily digest {now.date().isoformat()}", text="\n".join(lines),
                                    facts={"alerts": counts, "tenants": states})])
    return saved[0] if saved else None
