"""bench/pages.py's steps, importable once Django is set up (the test of its --small mode uses them too): build the
data set, read the facts the page URLs need, serve each page and report median, p95 and queries."""
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from bench import pages_data, pages_extras
from exchange.models import Sweep, TokenTest
from exchange.selectors import TOKEN_TEST_KEYS
from onboarding.models import CustomerTenant, Tag
from ops.export_models import ExportJob
from ops.models import Alert
from ops.selectors import ALERT_KEYS
from portal.keyset import cursor_encode
from portal.models import AuditEvent
from portal.services import staff_user_create
from portal.verify_models import AuditVerification

ADMIN = "bench-admin"
WARM_UP = 2


def build(scale_name: str, *, out=print) -> dict:
    """The data set of `scale_name` (FULL or SMALL) in the current database, the admin who reads it, and the rollups
    when the rollup backfill exists. Returns the counts written."""
    scale, now = getattr(pages_data, scale_name), timezone.now()
    admin = staff_user_create(username=ADMIN, role="admin", password="bench-pages-2026")
    counts = {}
    t0 = time.perf_counter()
    _app, tenants = pages_data.build_tenants(scale, now=now)
    counts["tenants"] = len(tenants)
    out(f"{len(tenants):,} tenants in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    counts["steps"] = pages_data.build_tests(scale, tenants, now=now)
    counts["tests"] = scale.tests
    out(f"{scale.tests:,} token tests, {counts['steps']:,} steps, {scale.sweeps} sweeps in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    counts["audit_events"] = pages_data.build_audit(scale, tenants, now=now)
    out(f"{counts['audit_events']:,} audit events (HMAC chain) in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    counts.update(pages_extras.build_tags(scale), profiles=pages_extras.build_profiles(scale),
                  archived_customers=pages_extras.build_tenant_facts(scale, now=now),
                  alerts=pages_extras.build_alerts(scale, now=now))
    pages_extras.build_jobs(user=admin, now=now)
    out(f"tags, profiles, alerts ({counts['alerts']:,}), exports, verifications in {time.perf_counter() - t0:.1f} s")
    for name in sorted(get_commands()):
        if "rollup" in name and ("backfill" in name or "rebuild" in name):
            t0 = time.perf_counter()
            call_command(name)
            out(f"rollups: manage.py {name} in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    pages_data.analyze()
    out(f"ANALYZE in {time.perf_counter() - t0:.1f} s")
    return counts


def facts_of() -> dict:
    """Values the page URLs name (a tenant, a deep cursor…), read from the data set."""
    tenant = CustomerTenant.objects.exclude(last_outcome__in=["verified", "no_role"]).order_by("pk").first()
    no_role = CustomerTenant.objects.filter(last_outcome="no_role").order_by("pk").first()
    tests, alerts = TokenTest.objects.count(), Alert.objects.count()
    deep_test = TokenTest.objects.order_by("-queued_at", "-pk")[tests // 2: tests // 2 + 1].first()
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    today = timezone.now().date()
    return {"big_customer": 1, "no_role_tenant": no_role.pk, "customer": tenant.customer_id,
            "tag": Tag.objects.order_by("name").values_list("name", flat=True).first(),
            "deep_tenant_page": max(1, CustomerTenant.objects.count() // 50 // 2),
            "verification": AuditVerification.objects.order_by("-pk").values_list("pk", flat=True).first(),
            "deep_alert_cursor": cursor_encode(Alert.objects.order_by("-created_at", "-pk")[alerts // 2], ALERT_KEYS),
            "export": ExportJob.objects.order_by("-pk").values_list("pk", flat=True).first(),
            "tenant": tenant.pk, "tenant_id": str(tenant.tenant_id),
            "failed_test": TokenTest.objects.filter(tenant=tenant).order_by("-queued_at").first().pk,
            "deep_test_cursor": cursor_encode(deep_test, TOKEN_TEST_KEYS), "deep_seq": str(seq // 2),
            "sweep": Sweep.objects.order_by("-started_at").first().pk,
            "week_ago": (today - timedelta(days=7)).isoformat(), "yesterday": (today - timedelta(days=1)).isoformat()}


def _fill(values: dict, facts: dict) -> dict:
    return {k: facts[v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in values.items()}


@dataclass(frozen=True)
class Result:
    label: str
    url: str
    status: int = 0
    median_ms: float = 0.0
    p95_ms: float = 0.0
    queries: int = 0
    kib: float = 0.0
    cpu_ms: float = 0.0  # this process's CPU per request (the database's is not in it)
    db_ms: float = 0.0  # the page's queries, one request
    skipped: str = ""


def measure(pages, facts: dict, *, repeat: int, out=print) -> list[Result]:
    client = Client()
    client.force_login(get_user_model().objects.get(username=ADMIN))
    results = []
    for page in pages:
        try:
            url = reverse(page.url_name, kwargs=_fill(page.kwargs, facts))
        except NoReverseMatch:
            out(f"skipped {page.label}: {page.url_name} does not resolve here")
            results.append(Result(page.label, page.url_name, skipped="URL not here"))
            continue
        params = _fill(page.params, facts)
        for _ in range(WARM_UP):
            client.get(url, params)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, params)
        # Read now: the next request empties the log the context reads. DB ms: the queries' wall time, as Django saw it.
        query_count, db_ms = len(queries), sum(float(q["time"]) for q in queries.captured_queries) * 1000
        walls, cpu0 = [], time.process_time()
        for _ in range(repeat):
            t0 = time.perf_counter()
            client.get(url, params)
            walls.append((time.perf_counter() - t0) * 1000)
        cpu_ms = (time.process_time() - cpu0) * 1000 / max(1, repeat)
        results.append(Result(page.label, url, response.status_code, statistics.median(walls), p95(walls),
                              query_count, len(response.content) / 1024, cpu_ms, db_ms))
    return results


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def report(results: list[Result]) -> str:
    lines = [f"{'page':34} {'status':>6} {'median ms':>10} {'p95 ms':>8} {'CPU ms':>7} {'queries':>8} {'DB ms':>6} {'KiB':>7}"]
    for r in results:
        if r.skipped:
            lines.append(f"{r.label:34} {'—':>6} skipped: {r.skipped}")
        else:
            lines.append(f"{r.label:34} {r.status:>6} {r.median_ms:>10.1f} {r.p95_ms:>8.1f} {r.cpu_ms:>7.1f} "
                         f"{r.queries:>8} {r.db_ms:>6.1f} {r.kib:>7.1f}")
    return "\n".join(lines)
