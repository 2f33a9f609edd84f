"""Outages as staff see them (the banner on every staff page): an endpoint failing transiently for many tenants at
once — an open circuit breaker, or failed hops of many tenants' tests within a window — so that a tenant's own state
is not painted red for Microsoft's outage. Read cheaply: one cache read and one small grouped query, kept briefly."""
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Q
from django.utils import timezone

from exchange import faults
from exchange.chain import ENDPOINT_OF_STEP
from exchange.models import TokenTest, TokenTestStep
from exchange.selectors import QUEUED_MARGIN, outages_current

BANNER_CACHE_KEY, BANNER_CACHE_SECONDS = "exchange:outage-banner", 10


def endpoints_failing(*, now: datetime) -> dict[tuple[str, str], dict]:
    """{(cloud, endpoint): {since, tenants}} for hops that failed transiently for at least ALERTS_OUTAGE_MIN_TENANTS
    distinct tenants within ALERTS_OUTAGE_WINDOW_MINUTES (the ops watcher's definition of an outage): failed steps
    of tests that ended "transient" or are still waiting for a retry."""
    since = now - timedelta(minutes=settings.ALERTS_OUTAGE_WINDOW_MINUTES)
    unanswered = Q(test__outcome=TokenTest.Outcome.TRANSIENT) | Q(test__outcome="", test__status__in=TokenTest.PENDING)
    rows = (TokenTestStep.objects.order_by()
            .filter(unanswered, ok=False, started_at__gte=since, test__queued_at__gte=since - QUEUED_MARGIN)
            .values("test__tenant__cloud", "name")
            .annotate(tenants=Count("test__tenant", distinct=True), since=Min("started_at"))
            .filter(tenants__gte=settings.ALERTS_OUTAGE_MIN_TENANTS))
    return {(row["test__tenant__cloud"], ENDPOINT_OF_STEP.get(row["name"], row["name"])):
            {"since": row["since"], "tenants": row["tenants"]} for row in rows}


def outage_banner(*, now: datetime | None = None) -> list[dict]:
    """Each endpoint in an outage: endpoint, its label, cloud, since, tenants affected (held by its open breaker or
    failing on it), and whether its breaker holds tests. Kept BANNER_CACHE_SECONDS (it is on every staff page)."""
    try:
        found = cache.get(BANNER_CACHE_KEY)
    except Exception:  # noqa: BLE001 - no cache: read it every time
        found = None
    if found is not None:
        return found
    now = now or timezone.now()
    merged = endpoints_failing(now=now)
    for outage in outages_current(now=now):
        pair = (outage["cloud"], outage["endpoint"])
        failing = merged.get(pair, {"since": outage["since"], "tenants": 0})
        merged[pair] = {"since": min(failing["since"], outage["since"]), "breaker": True,
                        "tenants": max(failing["tenants"], outage["tenants_affected"])}
    banner = [{"cloud": cloud, "endpoint": endpoint, "label": faults.ENDPOINT_LABELS.get(endpoint, endpoint),
               "breaker": False, **facts} for (cloud, endpoint), facts in sorted(merged.items())]
    try:
        cache.set(BANNER_CACHE_KEY, banner, timeout=BANNER_CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        pass
    return banner
