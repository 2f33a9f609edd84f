"""Benchmark: every staff page at MSSP scale (10,000 tenants, 1,000,000 token tests with 4,000,000 steps, 100 sweeps,
1,000,000 audit events) on PostgreSQL: median and p95 of 20 requests per page, and the queries each makes.

    .venv/bin/python bench/pages.py            # the full data set (built in a few minutes), then the pages
    .venv/bin/python bench/pages.py --small    # 200 tenants, 2,000 tests, 3,000 events: a check that runs in < 1 min
    .venv/bin/python bench/pages.py --keep     # keep the database afterwards; --reuse measures it again unbuilt

It creates its own database (BENCH_PAGES_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/bench_pages),
builds the data set with COPY (bench/pages_data.py; the audit events form a valid HMAC chain; bench/pages_extras.py:
tags, access profiles, archived customers, latest checks, alerts, exports, verifications), runs the rollup backfill,
then serves each page in this process through Django's test client (the whole request path: middleware, view,
template) signed in as an admin, after two warm-up requests. A page whose URL does not resolve here is skipped with a
note (add pages to PAGES). The database is dropped at the end unless --keep.
"""
import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_PAGES_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_pages")


@dataclass(frozen=True)
class Page:
    label: str
    url_name: str
    kwargs: dict = field(default_factory=dict)  # values may be names of Facts attributes, written "@name"
    params: dict = field(default_factory=dict)


# Every staff page worth measuring; "@name" is filled from the data set's facts (below). Extend freely.
PAGES = [
    Page("dashboard", "console:dashboard"),
    Page("tenants", "onboarding:tenant-list"),
    Page("tenants, failing", "onboarding:tenant-list", params={"status": "failing"}),
    Page("tenants, no role", "onboarding:tenant-list", params={"status": "no_role"}),
    Page("tenants, verified by date", "onboarding:tenant-list", params={"status": "verified", "sort": "-verified"}),
    Page("tenants, a tag", "onboarding:tenant-list", params={"tag": "@tag"}),
    Page("tenants, a customer", "onboarding:tenant-list", params={"customer": "@customer"}),
    Page("tenants, search", "onboarding:tenant-list", params={"q": "t0424"}),
    Page("tenants, sort by status", "onboarding:tenant-list", params={"sort": "status"}),
    Page("tenants, failing since", "onboarding:tenant-list", params={"sort": "failing"}),
    Page("tenants, a deep page", "onboarding:tenant-list", params={"page": "@deep_tenant_page"}),
    Page("tenant picker", "onboarding:tenant-picker", params={"q": "t0424"}),
    Page("customers", "onboarding:customer-list"),
    Page("customers, search", "onboarding:customer-list", params={"q": "t0424"}),
    Page("customers, a tag", "onboarding:customer-list", params={"tag": "@tag"}),
    Page("customers, archived too", "onboarding:customer-list", params={"archived": "1"}),
    Page("a customer (the biggest)", "onboarding:customer-detail", {"pk": "@big_customer"}),
    Page("a tenant", "onboarding:tenant-detail", {"pk": "@tenant"}),
    Page("a tenant without its role", "onboarding:tenant-detail", {"pk": "@no_role_tenant"}),
    Page("token tests", "exchange:tokentest-list"),
    Page("token tests, a tenant", "exchange:tokentest-list", params={"tenant": "@tenant"}),
    Page("token tests, an outcome", "exchange:tokentest-list", params={"outcome": "misconfigured"}),
    Page("token tests, a status", "exchange:tokentest-list", params={"status": "failed"}),
    Page("token tests, a diagnosis", "exchange:tokentest-list", params={"code": "AADSTS53003"}),
    Page("token tests, dates", "exchange:tokentest-list", params={"since": "@week_ago", "until": "@yesterday"}),
    Page("token tests, deep page", "exchange:tokentest-list", params={"older": "@deep_test_cursor"}),
    Page("a token test", "exchange:tokentest-detail", {"pk": "@failed_test"}),
    Page("sweeps", "exchange:sweep-list"),
    Page("a sweep", "exchange:sweep-detail", {"pk": "@sweep"}),
    Page("audit", "portal:audit-list"),
    Page("audit, deep page", "portal:audit-list", params={"older": "@deep_seq"}),
    Page("audit, an action", "portal:audit-list", params={"action": "consent."}),
    Page("audit, a tenant", "portal:audit-list", params={"tenant_id": "@tenant_id"}),
    Page("audit, an actor", "portal:audit-list", params={"actor": "bench-admin"}),
    Page("audit, an absent actor", "portal:audit-list", params={"actor": "nobody"}),
    Page("audit, dates", "portal:audit-list", params={"since": "@week_ago", "until": "@yesterday"}),
    Page("audit verification", "portal:audit-verify"),
    Page("an audit verification", "portal:audit-verify-run", {"pk": "@verification"}),
    Page("identities", "exchange:identities"),
    Page("access profiles", "exchange:access-profiles"),
    Page("emergency stop", "exchange:estop"),
    Page("exports", "ops:export-list"),
    Page("an export", "ops:export-detail", {"pk": "@export"}),
    Page("alerts", "ops:alert-list"),
    Page("alerts, a kind", "ops:alert-list", params={"kind": "lost_access"}),
    Page("alerts, a deep page", "ops:alert-list", params={"older": "@deep_alert_cursor"}),
    Page("alert settings", "ops:alert-settings"),
    Page("login locks", "portal:login-locks"),
]


def recreate_database(url: str):
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str):
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="the small data set (a check, < 1 min)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--reuse", action="store_true", help="measure the kept database again without building")
    args = parser.parse_args()

    if not args.reuse:
        recreate_database(DATABASE_URL)
    os.environ.update(DATABASE_URL=DATABASE_URL, DJANGO_DEBUG="1", DJANGO_SETTINGS_MODULE="portal.settings",
                      LOG_LEVEL="ERROR", ALLOWED_HOSTS="testserver,127.0.0.1",
                      AUDIT_KEY=os.environ.get("AUDIT_KEY", "bench-pages-audit-key-0123456789abcdef0123"),
                      AUDIT_CHECKPOINT_DIR=os.environ.get("AUDIT_CHECKPOINT_DIR", str(ROOT / "var/bench-pages")))
    import django

    django.setup()
    from django.core.management import call_command

    from bench.pages_run import build, facts_of, measure, report

    scale_name = "SMALL" if args.small else "FULL"
    if not args.reuse:
        call_command("migrate", verbosity=0)
        build(scale_name, out=print)
    results = measure(PAGES, facts_of(), repeat=args.repeat, out=print)
    print(report(results))
    if args.keep or args.reuse:
        print(f"Kept {DATABASE_URL} (--reuse measures it again).")
    else:
        drop_database(DATABASE_URL)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"Done in {time.perf_counter() - t0:.0f} s.")
