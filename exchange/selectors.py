"""Reads of exchange: the identity the workers use, token tests and their filters, tenant health, sweep progress."""
import time
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from exchange.breaker import outages_open
from exchange.models import HomeApp, ManagedIdentity, Sweep, TokenTest

# A sweep asks for the same app's identity once per tenant: with max_age, a worker process reads it once per window.
_identities: dict[int, tuple[float, ManagedIdentity | None]] = {}


def worker_identity(app: HomeApp, *, max_age: float = 0) -> ManagedIdentity | None:
    """The in-use user-assigned identity of the app's home tenant and cloud (the FIC must trust it).

    `max_age` > 0 accepts this process's answer from up to that many seconds ago (sweeps); 0 always reads."""
    remembered = _identities.get(app.pk) if max_age else None
    if remembered and remembered[0] > time.monotonic():
        return remembered[1]
    identity = (ManagedIdentity.objects.filter(in_use=True, tenant_id=app.home_tenant_id, cloud=app.cloud)
                .order_by("created_at").first())
    _identities[app.pk] = (time.monotonic() + max_age, identity)
    return identity


def forget_worker_identities() -> None:
    _identities.clear()


def fic_recently_created(app: HomeApp) -> bool:
    """A FIC of this app was created (through the portal, or first seen) within the propagation window."""
    from django.conf import settings

    since = timezone.now() - timedelta(minutes=settings.FIC_PROPAGATION_MINUTES)
    return app.credentials.filter(removed_at=None).filter(
        Q(created_by_portal_at__gte=since) | Q(first_seen__gte=since)).exists()


def token_tests(*, tenant_id=None, outcome: str = "", code: str = "", status: str = "",
                since: datetime | None = None, until: datetime | None = None) -> QuerySet[TokenTest]:
    tests = TokenTest.objects.select_related("tenant", "tenant__customer")
    if tenant_id:
        tests = tests.filter(tenant_id=tenant_id)
    if outcome:
        tests = tests.filter(outcome=outcome)
    if code:
        tests = tests.filter(diagnosis_code__icontains=code)
    if status:
        tests = tests.filter(status=status)
    if since:
        tests = tests.filter(queued_at__gte=since)
    if until:
        tests = tests.filter(queued_at__lt=until)
    return tests.order_by("-queued_at", "-pk")


def token_test_detail(pk: int) -> TokenTest:
    return TokenTest.objects.select_related("tenant", "tenant__customer", "tenant__home_app", "sweep",
                                            "requested_by").prefetch_related("steps").get(pk=pk)


def tenant_recent_tests(tenant, limit: int = 10) -> list[TokenTest]:
    return list(TokenTest.objects.filter(tenant=tenant).order_by("-queued_at", "-pk")[:limit])


def tenant_running_test(tenant) -> TokenTest | None:
    return (TokenTest.objects.filter(tenant=tenant, status__in=[TokenTest.Status.QUEUED, TokenTest.Status.RUNNING])
            .order_by("-queued_at").first())


def sweeps(limit: int = 20) -> list[Sweep]:
    return list(Sweep.objects.select_related("started_by")[:limit])


def health_overview() -> dict:
    """Counts for the dashboard: tenants by last outcome, and recent exchange success."""
    from onboarding.models import CustomerTenant

    tenants = CustomerTenant.objects.filter(offboarded_at=None)
    by_outcome = dict(tenants.values_list("last_outcome").annotate(n=Count("pk")).values_list("last_outcome", "n"))
    recent = TokenTest.objects.filter(status__in=[TokenTest.Status.SUCCEEDED, TokenTest.Status.FAILED])
    latest = list(recent.order_by("-finished_at").values_list("outcome", flat=True)[:500])
    total = len(latest)
    ok = latest.count(TokenTest.Outcome.VERIFIED)
    failing = tenants.filter(consecutive_failures__gt=0).select_related("customer").order_by("failing_since")[:10]
    codes = (recent.exclude(diagnosis_code__in=["", "verified"]).values("diagnosis_code")
             .annotate(n=Count("pk")).order_by("-n")[:6])
    return {
        "tenants_total": tenants.count(),
        "tenants_verified": by_outcome.get("verified", 0),
        "tenants_no_role": by_outcome.get("no_role", 0),
        "tenants_failing": tenants.filter(consecutive_failures__gt=0).exclude(last_outcome="no_role").count(),
        "tenants_untested": by_outcome.get("", 0),
        "recent_total": total,
        "recent_success_rate": round(100 * ok / total) if total else None,
        "failing_tenants": list(failing),
        "top_codes": list(codes),
        "running": TokenTest.objects.filter(Q(status="queued") | Q(status="running")).count(),
        "chart": daily_counts(days=14),
    }


def daily_counts(*, days: int) -> dict | None:
    """Finished token tests per day, verified vs not, for the dashboard's chart."""
    start = timezone.now() - timedelta(days=days - 1)
    rows = (TokenTest.objects.filter(finished_at__gte=start).annotate(day=TruncDate("finished_at"))
            .values("day").annotate(total=Count("pk"), ok=Count("pk", filter=Q(outcome="verified"))))
    by_day = {row["day"]: row for row in rows}
    if not by_day:
        return None
    labels, ok, failed = [], [], []
    for offset in range(days):
        day = (start + timedelta(days=offset)).date()
        row = by_day.get(day, {"total": 0, "ok": 0})
        labels.append(day.isoformat())
        ok.append(row["ok"])
        failed.append(row["total"] - row["ok"])
    return {"labels": labels, "verified": ok, "failed": failed}


def outages_current(*, now: datetime | None = None) -> list[dict]:
    """Endpoints in an outage (circuit breaker open), for the dashboard's banner: endpoint, cloud, since, minutes, and
    the tenants whose tests are held for it."""
    now = now or timezone.now()
    outages = []
    for (cloud, endpoint), outage in sorted(outages_open(now=now).items()):
        held = TokenTest.objects.filter(status=TokenTest.Status.QUEUED, error__held__endpoint=endpoint,
                                        error__held__cloud=cloud)
        outages.append({"endpoint": endpoint, "cloud": cloud, "since": outage.since,
                        "minutes": round(outage.minutes(now), 1),
                        "tenants_affected": held.values("tenant").distinct().count()})
    return outages
