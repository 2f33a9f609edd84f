"""Reads of exchange: the identity the workers use, token tests and their filters, tenant health, sweep progress."""
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from exchange import rollups
from exchange.breaker import outages_open
from exchange.clouds import consent_redirect_uri
from exchange.entra import oidc_discovery_problem_cached
from exchange.lint import ERROR, lint_app, workers_identity, worst
from exchange.models import AccessProfile, HomeApp, ManagedIdentity, Sweep, TokenTest, TokenTestStep
from exchange.profiles import default_grants

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


def fics_trusting(app: HomeApp, identity: ManagedIdentity) -> list:
    """The app's live FICs whose subject is the identity's principal id (whatever their issuer)."""
    return list(app.credentials.filter(removed_at=None, subject__iexact=str(identity.principal_id)))


def fic_recently_created(app: HomeApp) -> bool:
    """A FIC of this app was created (through the portal, or first seen) within the propagation window."""
    since = timezone.now() - timedelta(minutes=settings.FIC_PROPAGATION_MINUTES)
    return app.credentials.filter(removed_at=None).filter(
        Q(created_by_portal_at__gte=since) | Q(first_seen__gte=since)).exists()


TOKEN_TEST_KEYS = ("queued_at", "pk")  # the list's order (newest first) and its keyset cursor


def token_tests(*, tenant_id=None, sweep_id=None, outcome: str = "", diagnosis: str = "", code: str = "",
                status: str = "", since: datetime | None = None,
                until: datetime | None = None) -> QuerySet[TokenTest]:
    """Token tests, newest first, filtered. `diagnosis` is a diagnosis code matched exactly (indexed with queued_at:
    the staff list's filter); `code` a part of one (the API's filter: it scans)."""
    tests = TokenTest.objects.select_related("tenant", "tenant__customer")
    if tenant_id:
        tests = tests.filter(tenant_id=tenant_id)
    if sweep_id:
        tests = tests.filter(sweep_id=sweep_id)
    if outcome:
        tests = tests.filter(outcome=outcome)
    if diagnosis:
        tests = tests.filter(diagnosis_code=diagnosis)
    if code:
        tests = tests.filter(diagnosis_code__icontains=code)
    if status:
        tests = tests.filter(status=status)
    if since:
        tests = tests.filter(queued_at__gte=since)
    if until:
        tests = tests.filter(queued_at__lt=until)
    return tests.order_by("-queued_at", "-pk")


def tenant_named(pk: int | None):
    """The tenant a list is filtered by, to show it by name (None for an unknown pk). Read through the token test's
    foreign key: the tenant model is onboarding's, above this app."""
    if not pk:
        return None
    tenants = TokenTest._meta.get_field("tenant").related_model.objects.select_related("customer")
    return tenants.filter(pk=pk).first()


def token_tests_detailed() -> QuerySet[TokenTest]:
    return TokenTest.objects.select_related("tenant", "tenant__customer", "tenant__home_app", "sweep",
                                            "requested_by").prefetch_related("steps")


def token_test_detail(pk: int) -> TokenTest:
    return token_tests_detailed().get(pk=pk)


@dataclass(frozen=True)
class Attempt:
    """One run of the chain within a token test: when it started, how long it took, how it ended."""
    number: int
    started_at: datetime
    duration_ms: int
    ok: bool
    failed_step: TokenTestStep | None  # the hop that failed (the chain stops at the first)


def token_test_attempts(steps: list[TokenTestStep]) -> list[Attempt]:
    """A test's attempts from its steps (ordered by attempt, start): start, duration (first start to last end), and
    the hop that failed, if one did."""
    by_number: dict[int, list[TokenTestStep]] = {}
    for step in steps:
        by_number.setdefault(step.attempt, []).append(step)
    attempts = []
    for number, hops in sorted(by_number.items()):
        start = min(h.started_at for h in hops)
        end = max(h.started_at + timedelta(milliseconds=h.duration_ms) for h in hops)
        failed = next((h for h in hops if not h.ok), None)
        attempts.append(Attempt(number, start, int((end - start).total_seconds() * 1000), failed is None, failed))
    return attempts


def tenant_running_test(tenant) -> TokenTest | None:
    return (TokenTest.objects.filter(tenant=tenant, status__in=TokenTest.PENDING)
            .order_by("-queued_at").first())


SWEEP_KEYS = ("started_at", "pk")


def sweeps(limit: int = 20) -> list[Sweep]:
    return list(Sweep.objects.select_related("started_by")[:limit])


def sweeps_all() -> QuerySet[Sweep]:
    return Sweep.objects.select_related("started_by").order_by("-started_at", "-pk")


def sweep_running() -> Sweep | None:
    return Sweep.objects.filter(finished_at=None).first()


def sweep_failures(sweep: Sweep, *, limit: int) -> list[TokenTest]:
    return list(sweep.tests.filter(status=TokenTest.Status.FAILED).select_related("tenant")[:limit])


# TokenTest.finished_at and TokenTestStep.started_at have no index; queued_at has one. A test finishing (or a step
# starting) in a recent window was queued at most this long before (retries and outage holds included), so the index
# bounds the scan (exchange.outages, ops.selectors).
QUEUED_MARGIN = timedelta(hours=2)
RUNS_WINDOW_HOURS = 24  # the success rate of runs is over this many hours (whole hours of the rollups)
DIAGNOSES_WINDOW_DAYS = 30  # the commonest diagnoses are over this many days
TOP_CODES = 6


def runs_overview(*, now: datetime | None = None) -> dict:
    """Runs (not tenants) from the rollups, never the tests: the last day's count and success rate, the commonest
    diagnoses of the last 30 days, and the tests queued or running now."""
    now = now or timezone.now()
    day = rollups.runs_summary(since=now - timedelta(hours=RUNS_WINDOW_HOURS - 1))
    month = rollups.runs_summary(since=now - timedelta(days=DIAGNOSES_WINDOW_DAYS - 1), period=rollups.DAY)
    return {"total": day["total"], "verified": day["verified"],
            "rate": round(100 * day["verified"] / day["total"]) if day["total"] else None,
            "codes": month["codes"][:TOP_CODES],
            "running": TokenTest.objects.filter(status__in=TokenTest.PENDING).count()}


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


@dataclass(frozen=True)
class InventoryReport:
    apps: list[dict]  # per home app: app, findings, fics [(fic, findings)], status, first error, worker identity...
    identities: list[ManagedIdentity]


def fic_inventory_report() -> InventoryReport:
    """Every home app with its live FICs as last read from Graph and the lint's findings (app-level and per FIC),
    its worst severity and first error, the identity the workers use, and the FICs seen removed."""
    identities = list(ManagedIdentity.objects.all())
    apps = []
    for app in HomeApp.objects.prefetch_related("credentials"):
        fics = [f for f in app.credentials.all() if f.removed_at is None]
        findings, per_fic = lint_app(app, fics=fics, identities=identities, portal_redirect_uri=consent_redirect_uri(),
                                     discovery=oidc_discovery_problem_cached)
        everything = findings + [f for items in per_fic.values() for f in items]
        apps.append({"app": app, "findings": findings, "fics": [(f, per_fic[f.pk]) for f in fics],
                     "status": worst(everything),
                     "first": next((f for f in everything if f.severity == ERROR), None),
                     "worker_identity": workers_identity(app, identities),  # the lint's own rule
                     "removed": [f for f in app.credentials.all() if f.removed_at]})
    return InventoryReport(apps, identities)


def access_profiles() -> QuerySet[AccessProfile]:
    return AccessProfile.objects.annotate(customer_count=Count("customers"))


def agreed_grants(tenants) -> dict[int, list[dict]]:
    """{tenant pk: the access agreed with its customer}: the customer's profile, else the default profile, else (no
    profile in the database at all) Reader on every subscription the app can see. Two queries for any batch."""
    tenants = list(tenants)
    default = AccessProfile.objects.filter(is_default=True).values_list("grants", flat=True).first()
    own = dict(AccessProfile.objects.filter(customers__tenants__in=[t.pk for t in tenants])
               .values_list("customers__tenants", "grants"))
    return {t.pk: own.get(t.pk) or default or default_grants() for t in tenants}
