"""Benchmark: the alert watcher and the /metrics scrape at MSSP scale on PostgreSQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/ops_alerts.py [--tenants 10000]

Builds (bulk inserts) N tenants, 10 finished token tests each (a fifth of them in the metrics window, with four steps
each), then prints the median and max of 5 runs (and queries per run) for: the watcher with nothing new, the watcher
with 10% of the tenants losing access (alerts raised, no channel), and a /metrics scrape. The database's ops and
exchange tables are emptied first: use a database of your own.
"""
import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")


def timed(label, fn, runs=5, setup=None):
    from django.db import connection, reset_queries

    times, queries = [], 0
    for _ in range(runs):
        if setup:
            setup()
        reset_queries()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
        queries = len(connection.queries)
    print(f"{label:<48} median {statistics.median(times):8.1f} ms   max {max(times):8.1f} ms   {queries} queries")


def build(n: int, now) -> list:
    from exchange.models import HomeApp, TokenTest, TokenTestStep
    from onboarding.models import Customer, CustomerTenant

    for model in (TokenTestStep, TokenTest, CustomerTenant, Customer, HomeApp):
        model.objects.all().delete()
    app = HomeApp.objects.create(name="bench", client_id=uuid.uuid4(), home_tenant_id=uuid.uuid4())
    customers = Customer.objects.bulk_create([Customer(name=f"bench {i}") for i in range(n // 10)])
    tenants = CustomerTenant.objects.bulk_create(
        [CustomerTenant(customer=customers[i % len(customers)], home_app=app, tenant_id=uuid.uuid4(),
                        primary_domain=f"t{i}.example", consent_received_at=now - timedelta(days=30),
                        verified_at=now - timedelta(days=29), last_outcome="verified", last_tested_at=now)
         for i in range(n)], batch_size=5000)
    outcomes = ["verified"] * 8 + ["transient", "no_role"]
    for round_ in range(10):
        recent = round_ >= 8
        at = now - (timedelta(minutes=5) if recent else timedelta(hours=3 + round_))
        tests = TokenTest.objects.bulk_create(
            [TokenTest(tenant=t, trigger="sweep", status="succeeded", outcome=outcomes[(i + round_) % 10],
                       diagnosis_code=outcomes[(i + round_) % 10], queued_at=at, started_at=at, finished_at=at)
             for i, t in enumerate(tenants)], batch_size=5000)
        if recent:
            TokenTestStep.objects.bulk_create(
                [TokenTestStep(test=test, name=name, started_at=at, duration_ms=20 + (test.pk * 7 + j * 13) % 900,
                               ok=True) for test in tests
                 for j, name in enumerate(("imds", "home_token", "tenant_token", "arm_probe"))], batch_size=10000)
    return tenants


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true", help="keep the data of a previous run of the same size")
    args = parser.parse_args()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from exchange.models import TokenTest, TokenTestStep
    from onboarding.models import CustomerTenant
    from ops import services
    from ops.models import Alert, TenantWatch

    assert connection.vendor == "postgresql", "set DATABASE_URL to a PostgreSQL database of your own"
    settings.DEBUG = True  # count queries
    call_command("migrate", verbosity=0)
    now = timezone.now()
    start = time.perf_counter()
    Alert.objects.all().delete()
    TenantWatch.objects.all().delete()
    if args.reuse and CustomerTenant.objects.count() == args.tenants:
        CustomerTenant.objects.update(last_outcome="verified")
        TokenTest.objects.filter(finished_at__gte=now - timedelta(hours=2)).update(
            queued_at=now - timedelta(minutes=5), finished_at=now - timedelta(minutes=5))
        TokenTestStep.objects.filter(started_at__gte=now - timedelta(hours=2)).update(
            started_at=now - timedelta(minutes=5))
        tenants = list(CustomerTenant.objects.order_by("pk"))
    else:
        tenants = build(args.tenants, now)
    connection.cursor().execute("ANALYZE")
    print(f"data: {args.tenants} tenants, {TokenTest.objects.count()} tests, {TokenTestStep.objects.count()} steps "
          f"({time.perf_counter() - start:.0f} s to build)")
    timed("watcher, first run (records every tenant)", services.alerts_watch, runs=1)
    timed("watcher, nothing new", services.alerts_watch)
    pks = [t.pk for t in tenants[: args.tenants // 10]]

    def flip():
        outcome = "no_role" if CustomerTenant.objects.get(pk=pks[0]).last_outcome == "verified" else "verified"
        CustomerTenant.objects.filter(pk__in=pks).update(last_outcome=outcome)

    timed(f"watcher, {len(pks)} tenants change state", services.alerts_watch, setup=flip)
    client = Client()
    timed("/metrics scrape", lambda: client.get("/metrics"))
    size = len(client.get("/metrics").content)
    print(f"/metrics answer: {size} bytes; alerts raised: {Alert.objects.count()}")


if __name__ == "__main__":
    main()
