"""Reads of the ops app: tenants' states in one query, recent outcomes and latencies, queues, sweeps, alert history."""
from datetime import datetime, timedelta

from django.db.models import Count, F, Min, Q, Sum

from exchange.models import FederatedCredential, HomeApp, ManagedIdentity, Sweep, TokenTest, TokenTestStep
from exchange.selectors import QUEUED_MARGIN
from onboarding.models import CustomerTenant
from ops.models import Alert, Delivery

TENANT_STATES = tuple(CustomerTenant.Status.values)  # draft, invited, consent received, verified, … offboarded
TENANT_FIELDS = ("pk", "customer_id", "tenant_id", "primary_domain", "cloud", "last_outcome", "consent_received_at")
# The facts a state is derived from, as booleans the database computes (so they can also be grouped on).
_FACTS = {"off": Q(offboarded_at__isnull=False), "verified": Q(verified_at__isnull=False),
          "consent": Q(consent_received_at__isnull=False), "invited": Q(invited_at__isnull=False),
          "declined": Q(declined_at__isnull=False) & (Q(consent_received_at=None)
                                                     | Q(declined_at__gt=F("consent_received_at")))}


def tenant_state(row: dict) -> str:
    """A tenant's state from its facts, as CustomerTenant.status derives it. `last_outcome` is the last definitive
    outcome (onboarding.receivers keeps "transient" and "propagating" in the last check instead): an outage or a
    propagating FIC is no news about the tenant, and its state stays what it was."""
    if row["off"]:
        return "offboarded"
    outcome = row["last_outcome"]
    if outcome in ("verified", "no_role"):
        return outcome
    if row["declined"]:
        return "declined"
    if outcome and (row["consent"] or row["verified"]):
        return "failing"
    return "consent_received" if row["consent"] else "invited" if row["invited"] else "draft"


def tenant_rows():
    """Every tenant's state columns: one query, streamed."""
    return CustomerTenant.objects.order_by().values(*TENANT_FIELDS, **_FACTS).iterator(chunk_size=2000)


def tenants_by_state() -> dict[str, int]:
    """Tenant counts per state: one grouped query over the state columns."""
    counts = dict.fromkeys(TENANT_STATES, 0)
    for row in CustomerTenant.objects.order_by().values("last_outcome", **_FACTS).annotate(n=Count("pk")):
        counts[tenant_state(row)] += row["n"]
    return counts


def _finished_since(since: datetime) -> Q:
    return Q(queued_at__gte=since - QUEUED_MARGIN, finished_at__gte=since)


def transient_tenants_by_cloud(*, since: datetime) -> dict[str, int]:
    """Distinct tenants per cloud whose tests ended "transient" since then (an outage without a breaker)."""
    rows = (TokenTest.objects.order_by().filter(_finished_since(since), outcome=TokenTest.Outcome.TRANSIENT)
            .values("tenant__cloud").annotate(n=Count("tenant", distinct=True)))
    return {row["tenant__cloud"]: row["n"] for row in rows}


def lint_inputs() -> list[tuple]:
    """(app, its FICs, the identities) for every home app: three queries."""
    identities = list(ManagedIdentity.objects.all())
    fics: dict[int, list] = {}
    for fic in FederatedCredential.objects.filter(removed_at=None):
        fics.setdefault(fic.home_app_id, []).append(fic)
    return [(app, fics.get(app.pk, []), identities) for app in HomeApp.objects.all()]


def tests_recent_by_outcome(*, since: datetime) -> list[dict]:
    return list(TokenTest.objects.order_by().filter(_finished_since(since))
                .values("outcome", "diagnosis_code").annotate(n=Count("pk")))


def step_histograms(*, since: datetime, buckets_ms: list[int]) -> list[dict]:
    """Per step name: how many steps took at most each bucket, their count and total duration (one query)."""
    aggregates = {f"le_{b}": Count("pk", filter=Q(duration_ms__lte=b)) for b in buckets_ms}
    return list(TokenTestStep.objects.order_by()
                .filter(test__queued_at__gte=since - QUEUED_MARGIN, started_at__gte=since).values("name")
                .annotate(n=Count("pk"), total_ms=Sum("duration_ms"), **aggregates))


def queue_state(*, now: datetime) -> dict:
    row = TokenTest.objects.order_by().aggregate(
        queued=Count("pk", filter=Q(status=TokenTest.Status.QUEUED)),
        running=Count("pk", filter=Q(status=TokenTest.Status.RUNNING)),
        oldest=Min("queued_at", filter=Q(status=TokenTest.Status.QUEUED)))
    row["oldest_age"] = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return row


def sweep_latest() -> tuple[Sweep | None, Sweep | None]:
    """The latest sweep and the latest finished one."""
    return Sweep.objects.order_by("-started_at").first(), \
        Sweep.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()


def alert_counts() -> tuple[list[dict], list[dict]]:
    alerts = list(Alert.objects.order_by().values("kind").annotate(n=Count("pk")))
    deliveries = list(Delivery.objects.order_by().values("channel_kind", "status").annotate(n=Count("pk")))
    return alerts, deliveries


ALERT_KEYS = ("created_at", "pk")  # the alert history's keyset (portal.keyset), newest first


def alert_history(*, kind: str = ""):
    alerts = Alert.objects.select_related("customer", "tenant").prefetch_related("deliveries__channel")
    return alerts.filter(kind=kind) if kind else alerts


def alerts_since(*, since: datetime) -> dict[str, int]:
    return {row["kind"]: row["n"] for row in Alert.objects.order_by().filter(created_at__gte=since)
            .exclude(kind="digest").values("kind").annotate(n=Count("pk"))}


def deliveries_overdue(*, now: datetime, grace: timedelta) -> list[int]:
    return list(Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lt=now - grace)
                .values_list("pk", flat=True)[:500])
