"""Benchmark: the tenants page (onboarding:tenant-list) and its CSV export at 10,000 tenants on PostgreSQL.

    .venv/bin/python bench/tenants_page.py [--tenants 10000] [--repeat 20]

Runs the page in this process (Django's test client: the whole request path, middleware to HTML, signed in as a
viewer) on PostgreSQL with 10,000 tenants in 200 customers bulk-created: every derived status, three clouds, five
regions, a tag on every customer and an own tag on a fifth of the tenants. Prints median and p95 (server side), the
part spent waiting on SQL, the Python CPU per request and the queries per request for each filter, sort and a deep
page, then the export's rows per second. On a shared machine the wall times follow its load: read the SQL and CPU
columns too. The database
(BENCH_DATABASE_URL, default h_tenants on 127.0.0.1) is dropped and created anew.
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
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/h_tenants")


def recreate_database():
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def seed(n: int):
    """n tenants in n/50 customers, every status, with tags; returns a customer's pk."""
    from django.db import connection
    from django.utils import timezone

    from exchange.models import HomeApp
    from onboarding.models import Customer, CustomerTenant, Tag

    app = HomeApp.objects.create(name="Bench", client_id=uuid.uuid4(), home_tenant_id=uuid.uuid4())
    tags = Tag.objects.bulk_create([Tag(name=f"tag-{i}") for i in range(10)])
    customers = Customer.objects.bulk_create([Customer(name=f"Bench customer {i:03d}") for i in range(n // 50)])
    Customer.tags.through.objects.bulk_create([Customer.tags.through(customer=c, tag=tags[i % 10])
                                               for i, c in enumerate(customers)])
    now = timezone.now()
    outcomes = ["verified", "verified", "verified", "no_role", "not_consented", ""]
    tenants = CustomerTenant.objects.bulk_create([CustomerTenant(
        customer=customers[i % len(customers)], tenant_id=uuid.UUID(int=0xB0000000_0000_4000_8000_000000000000 + i),
        primary_domain=f"bench{i}.example", home_app=app, cloud=("global", "global", "usgov")[i % 3],
        region=("NA", "EU", "AS", "OC", "SA")[i % 5], consent_received_at=now if i % 7 else None,
        last_outcome=outcomes[i % len(outcomes)], last_success_at=now - timedelta(minutes=i),
        failing_since=now - timedelta(hours=i) if outcomes[i % len(outcomes)] == "not_consented" else None,
        offboarded_at=now if i % 97 == 0 else None) for i in range(n)], batch_size=2000)
    CustomerTenant.tags.through.objects.bulk_create([CustomerTenant.tags.through(customertenant=t, tag=tags[i % 10])
                                                     for i, t in enumerate(tenants) if i % 5 == 0], batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return customers[7].pk


def measure(client, cases: list, repeat: int) -> None:
    """Print median, p95 and queries per request of each case (GET /tenants/ with its parameters)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for label, params in cases:
        extra = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "tenant-rows"} if label.startswith("htmx") else {}
        assert client.get("/tenants/", params, **extra).status_code == 200  # warm
        walls, sql, cpu0 = [], [], time.process_time()
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get("/tenants/", params, **extra)
                walls.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
            sql.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        cpu = (time.process_time() - cpu0) * 1000 / repeat
        print(f"  {label:34s} median {statistics.median(walls):6.1f} ms  p95 {p95(walls):6.1f} ms  "
              f"(SQL median {statistics.median(sql):5.1f} ms, Python CPU {cpu:5.1f} ms)  {len(queries)} queries")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    recreate_database()
    os.environ.update(DATABASE_URL=DATABASE_URL, DJANGO_DEBUG="1", DJANGO_SETTINGS_MODULE="portal.settings",
                      LOG_LEVEL="ERROR")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from portal.services import staff_user_create

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    customer = seed(args.tenants)
    print(f"{args.tenants:,} tenants bulk-created in {time.perf_counter() - t0:.1f} s")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(staff_user_create(username="bench", role="viewer", password="bench-password-123456"))
    last_page = -(-args.tenants // 50)
    cases = [("default (customer order)", {}), (f"page {last_page} (last)", {"page": last_page}),
             ("status=failing", {"status": "failing"}), ("status=verified, sort=-verified",
                                                         {"status": "verified", "sort": "-verified"}),
             ("sort=status", {"sort": "status"}), ("sort=failing", {"sort": "failing"}),
             ("sort=-domain", {"sort": "-domain"}), ("tag=tag-3", {"tag": "tag-3"}),
             ("cloud=usgov, region=EU", {"cloud": "usgov", "region": "EU"}),
             ("customer=<pk>", {"customer": customer}), ("q=bench9999", {"q": "bench9999"}),
             ("htmx fragment, tag + sort", {"tag": "tag-1", "sort": "-failing"})]
    print(f"GET /tenants/ at {args.tenants:,} tenants ({args.repeat} requests each, server side):")
    measure(client, cases, args.repeat)
    t0 = time.perf_counter()
    response = client.get("/tenants/export.csv", {"archived": "on"})
    rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1
    seconds = time.perf_counter() - t0
    print(f"export of {rows:,} tenants: {seconds:.2f} s, {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
