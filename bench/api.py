"""Benchmark: the automation API's token exchange (issuer keys cached) and its list latency at 10,000 tenants.

    .venv/bin/python bench/api.py [--tenants 10000] [--exchanges 300] [--repeat 30]

Runs the API in this process (Django's test client: the whole request path, middleware to JSON) on PostgreSQL with
Redis as the shared cache, against the emulator over HTTPS (a GitHub-style OIDC issuer it serves). Prints the first
exchange (discovery + JWKS fetched), then the cost of one exchange with the keys cached (wall and CPU, and the part of
it that is signature verification), then GET /api/v1/tenants latencies (first page, a deep cursor page, filtered by
derived status, a search) with 10,000 tenants bulk-created. Timings vary ±20% on a shared machine: run it twice.
Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (BENCH_DATABASE_URL, BENCH_CACHE_URL override; the
database is dropped and created anew).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/keyless_api_bench")
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/15")
AUDIENCE = "api://keyless-portal"
SUBJECT = "repo:contoso/infra:ref:refs/heads/main"


def recreate_database():
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def timed(fn, repeat: int) -> tuple[list[float], float]:
    """Wall milliseconds of each call, and CPU milliseconds per call."""
    walls, cpu0 = [], time.process_time()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        walls.append((time.perf_counter() - t0) * 1000)
    return walls, (time.process_time() - cpu0) * 1000 / repeat


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--exchanges", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=30, help="calls per list measurement")
    args = parser.parse_args()

    recreate_database()
    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_CACHE_URL=CACHE_URL, DJANGO_DEBUG="1",
                      DJANGO_SETTINGS_MODULE="portal.settings", LOG_LEVEL="ERROR",
                      API_RATE_LIMIT="1000000", API_EXCHANGE_RATE_LIMIT="1000000")
    import django

    django.setup()
    import json

    import jwt
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from api import services
    from emulator.control import Control
    from emulator.server import Emulator
    from emulator.world import demo_world
    from exchange import issuer_keys
    from exchange.demo import demo_environment, demo_seed
    from onboarding.models import Customer, CustomerTenant
    from portal.services import Actor

    call_command("migrate", verbosity=0)
    cache.clear()
    emulator = Emulator(demo_world(), Path(tempfile.mkdtemp(prefix="keyless-api-bench-"))).start()
    try:
        env = demo_environment(emulator.info)
        settings.ENTRA_BASE_URL, settings.ENTRA_CA_BUNDLE, settings.IMDS_URL = (
            env["ENTRA_BASE_URL"], env["ENTRA_CA_BUNDLE"], env["IMDS_URL"])
        control = Control(emulator.base_url, emulator.ca_path)
        issuer = control.workload_issuer("ci")
        app, _identity = demo_seed(emulator.info)
        services.identity_provider_create(actor=Actor.system("bench"), name="bench", kind="github", issuer_url=issuer,
                                          audience=AUDIENCE, subject=SUBJECT, role="operator")
        tokens = [control.workload_token("ci", subject=SUBJECT, audience=AUDIENCE)
                  for _ in range(args.exchanges + 1)]
        client = Client(HTTP_HOST="127.0.0.1")

        def exchange(token):
            response = client.post("/api/v1/sts/exchange", json.dumps(
                {"audience": AUDIENCE, "issuer_uri": issuer, "jwt_token": token}), content_type="application/json")
            assert response.status_code == 200, response.content
            return response.json()["access_token"]

        t0 = time.perf_counter()
        access_token = exchange(tokens[0])
        first = (time.perf_counter() - t0) * 1000
        remaining = iter(tokens[1:])
        walls, cpu = timed(lambda: exchange(next(remaining)), args.exchanges)
        header = jwt.get_unverified_header(tokens[1])
        verify_walls, verify_cpu = timed(lambda: services._verify(token=tokens[1], header=header, issuer=issuer,
                                                                  audience=AUDIENCE), args.exchanges)
        print(f"exchange, first (discovery + JWKS over HTTPS): {first:.1f} ms")
        print(f"exchange, keys cached ({args.exchanges} calls): median {statistics.median(walls):.2f} ms, "
              f"p95 {p95(walls):.2f} ms, CPU {cpu:.2f} ms per exchange (of which the JWKS lookup and RS256 "
              f"verification: median {statistics.median(verify_walls):.2f} ms, CPU {verify_cpu:.2f} ms; the rest "
              "is the request, the portal token's row and the audit event)")
        print(f"  issuer calls after the first exchange: {control.requests()['by_endpoint'].get('oidc_issuer', 0)} "
              "(discovery + JWKS, once)")

        # 10,000 tenants in 100 customers, a mix of derived statuses; bulk-created.
        t0 = time.perf_counter()
        customers = Customer.objects.bulk_create([Customer(name=f"Bench customer {i:03d}") for i in range(100)])
        now = timezone.now()
        outcomes = ["verified", "verified", "verified", "no_role", "not_consented", ""]
        CustomerTenant.objects.bulk_create([
            CustomerTenant(customer=customers[i % 100], tenant_id=uuid.UUID(int=0xB0000000_0000_4000_8000_000000000000 + i),
                           primary_domain=f"bench{i}.example", home_app=app, consent_received_at=now,
                           last_outcome=outcomes[i % len(outcomes)],
                           verified_at=now if outcomes[i % len(outcomes)] == "verified" else None)
            for i in range(args.tenants)], batch_size=2000)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"\n{args.tenants:,} tenants bulk-created in {time.perf_counter() - t0:.1f} s")
        auth = {"HTTP_AUTHORIZATION": f"Bearer {access_token}"}

        def get(params):
            response = client.get("/api/v1/tenants", params, **auth)
            assert response.status_code == 200, response.content
            return response.json()

        deep, page = {"limit": 100}, 1
        while page < 51:
            following = get(deep)["next_cursor"]
            if following is None:
                break
            deep["cursor"], page = following, page + 1
        cases = [("first page (100)", {"limit": 100}), (f"page {page} (cursor)", dict(deep)),
                 ("status=failing (derived)", {"status": "failing", "limit": 100}),
                 ("search=bench9999", {"search": "bench9999", "limit": 100}),
                 ("customer_id filter", {"customer_id": customers[7].pk, "limit": 100})]
        print(f"GET /api/v1/tenants at {args.tenants:,} tenants ({args.repeat} calls each):")
        for label, params in cases:
            get(params)  # warm
            walls, cpu = timed(lambda params=params: get(params), args.repeat)
            print(f"  {label:28s} median {statistics.median(walls):6.1f} ms  p95 {p95(walls):6.1f} ms  "
                  f"CPU {cpu:5.1f} ms")
        assert issuer_keys.key_set(issuer).keys
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
