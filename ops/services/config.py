"""Admin writes of alerting (channels and routes, audited) and the metrics endpoint's guard."""
import hmac
import ipaddress
import secrets

from django.conf import settings
from django.db import transaction

from onboarding.models import Customer
from ops.models import Channel, Route
from ops.services.delivery import webhook_url_check
from portal.services import Actor, audit_record


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
                 kinds: list[str] | None = None, tag: str = "") -> Route:
    """A route; with `tag`, it matches the alerts of tenants (or customers) carrying that tag."""
    with transaction.atomic():
        route = Route(channel=channel, customer=customer, kinds=sorted(kinds or []), tag=tag)
        route.full_clean()
        route.save()
        audit_record(action="alerts.route_created", actor=actor, target_type="alertroute", target_id=str(route.pk),
                     detail={"channel": channel.name, "customer": customer.name if customer else "all customers",
                             "tag": tag, "kinds": route.kinds or "all"})
    return route


def route_delete(*, route: Route, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(action="alerts.route_deleted", actor=actor, target_type="alertroute", target_id=str(route.pk),
                     detail={"channel": route.channel.name, "tag": route.tag,
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
