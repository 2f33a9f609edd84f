"""Benchmark: a sweep of N tenants on a real Celery worker, Redis and PostgreSQL, against the emulator with latency.

    .venv/bin/python bench/sweep.py [--tenants 1000] [--latency-ms 20] [--processes 4] [--threads 20] [--naive-tenants 100]

Prints wall time and tenant tests per second for a cold sweep (fresh worker processes) and a warm one (clients and
metadata already cached), the emulator's call counts by endpoint and the CPU each part of the system used per tenant
test (emulator, PostgreSQL, Redis, the worker's parent and pool processes) for each, and the same figures for the naive loop
(azure-identity's ManagedIdentityCredential + ClientAssertionCredential created per tenant, one tenant after another).
Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (override with BENCH_DATABASE_URL/BENCH_BROKER_URL).
"""
import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "keyless_bench"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_world(n: int) -> dict:
    """The demo world plus n consented customer tenants, each with a Reader role on one subscription."""
    from emulator.world import demo_world

    world = demo_world()
    app = world["apps"][0]
    for i in range(n):
        tenant_id = str(uuid.UUID(int=0xB0000000_0000_4000_8000_000000000000 + i))
        sp = str(uuid.UUID(int=0xC0000000_0000_4000_8000_000000000000 + i))
        sub = str(uuid.UUID(int=0xD0000000_0000_4000_8000_000000000000 + i))
        world["tenants"].append({"id": tenant_id, "domains": [f"bench{i}.example"], "display_name": f"Bench {i}",
                                 "cloud": "global", "region": "EU"})
        world["service_principals"].append({"tenant": tenant_id, "app_id": app["app_id"], "object_id": sp})
        world["subscriptions"].append({"tenant": tenant_id, "subscription_id": sub, "display_name": f"Bench sub {i}"})
        world["role_assignments"].append({"tenant": tenant_id, "principal": sp, "scope": f"/subscriptions/{sub}",
                                          "role": "Reader"})
    return world


def ensure_database(url: str = DATABASE_URL, *, drop_only: bool = False):
    """A fresh, empty database at `url` (dropped first if it exists); with drop_only, just dropped."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def start_emulator(world: dict, latency_ms: int, tmp: Path) -> tuple[subprocess.Popen, dict]:
    """The emulator serving `world` on free ports with `latency_ms` per call: (its process, its emulator.json)."""
    world_path = tmp / "world.json"
    world_path.write_text(json.dumps(world))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--world", str(world_path), "--state-dir", str(tmp / "emulator"),
         "--port", str(free_port()), "--imds-port", str(free_port()), "--latency-ms", str(latency_ms)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info_path = tmp / "emulator" / "emulator.json"
    deadline = time.monotonic() + 60
    while not info_path.exists():
        if time.monotonic() > deadline or emulator.poll() is not None:
            emulator.terminate()
            sys.exit("the emulator did not start")
        time.sleep(0.1)
    return emulator, json.loads(info_path.read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--processes", type=int, default=4, help="Celery worker processes (prefork) or threads")
    parser.add_argument("--threads", type=int, default=20,
                        help="TOKEN_TEST_THREADS: chains a worker process runs side by side (a batch's tests)")
    parser.add_argument("--naive-tenants", type=int, default=100, help="tenants for the naive loop (rate is per tenant)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="keyless-bench-"))
    emulator, info = start_emulator(bench_world(args.tenants), args.latency_ms, tmp)
    try:
        run(args, emulator, info)
    finally:
        emulator.terminate()


def run(args, emulator, info: dict) -> None:

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
           "AUDIT_KEY": secrets.token_urlsafe(32),
           "ALLOWED_HOSTS": "localhost", "DATABASE_URL": DATABASE_URL, "CELERY_BROKER_URL": BROKER_URL,
           "ENTRA_BASE_URL": info["base_url"], "ENTRA_CA_BUNDLE": info["ca_path"], "IMDS_URL": info["imds_url"],
           "LOG_LEVEL": "WARNING", "TOKEN_TEST_THREADS": str(args.threads), "REDIS_CACHE_URL": BROKER_URL.rsplit("/", 1)[0] + "/13"}
    os.environ.update(env)
    ensure_database()
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    redis.Redis.from_url(env["REDIS_CACHE_URL"]).flushdb()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.seed import seed_bench_tenants

    seed_bench_tenants(info, bench_world(args.tenants))

    from emulator.control import Control

    control = Control(info["base_url"], info["ca_path"])
    def start_worker():
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", args.pool, "--concurrency",
             str(args.processes), "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # the banner; warnings still reach stderr

    def stop(worker):
        worker.terminate()
        worker.wait(timeout=30)

    print(f"tenants={args.tenants} emulator latency={args.latency_ms} ms/call "
          f"worker: {args.pool} pool, concurrency {args.processes}, {args.threads} chains side by side per process")
    rates = {}
    worker = start_worker()
    try:
        time.sleep(3)  # let the pool fork
        roles = {emulator.pid: "emulator", worker.pid: "worker", os.getpid(): "bench"}  # "worker children": the pool
        rates["first"] = run_sweep(control, "first sweep (fresh worker processes; every outcome is new, so audited)",
                                   roles)
        stop(worker)
        worker = start_worker()
        time.sleep(3)
        roles[worker.pid] = "worker"
        rates["cold"] = run_sweep(control, "cold sweep (fresh worker processes again: MSAL clients and MI token "
                                  "not yet in memory; metadata in the shared cache)", roles)
        rates["warm"] = run_sweep(control, "warm sweep (clients, metadata and MI token cached)", roles)
    finally:
        stop(worker)
    naive = run_naive(control, info, args.naive_tenants)
    print("\nspeed-up over the naive loop: " + ", ".join(f"{k} {v / naive:.0f}x" for k, v in rates.items()))
    print("To scale further: start more worker processes (about two per core) or hosts on the same Redis and "
          "PostgreSQL (celery -A portal worker --concurrency N); each keeps TOKEN_TEST_THREADS chains in flight and "
          "fetches the MI token once.")

TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> tuple[str, int, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS  # ppid, utime + stime


def cpu_seconds(roles: dict[int, str]) -> dict[str, float]:
    """CPU seconds used so far by each part of the system: the emulator, the worker (parent and pool), PostgreSQL,
    Redis and this process (which seeds and polls). Linux /proc only; empty elsewhere."""
    stats = {pid: st for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if (st := proc_stat(pid))}
    totals: dict[str, float] = {}

    def role_of(pid: int) -> str | None:
        seen = set()
        while pid in stats and pid not in seen:
            seen.add(pid)
            if pid in roles:
                return roles[pid] if len(seen) == 1 else f"{roles[pid]} children"
            comm, ppid, _ = stats[pid]
            if comm.startswith("postgres"):
                return "postgresql"
            if comm.startswith("redis-server"):
                return "redis"
            pid = ppid
        return None

    for pid, (_, _, seconds) in stats.items():
        if (role := role_of(pid)) is not None:
            totals[role] = totals.get(role, 0.0) + seconds
    return totals


def run_sweep(control, label: str, roles: dict[int, str]) -> float:
    from exchange.models import Sweep
    from onboarding.services import sweep_all_start
    from portal.services import Actor

    control.reset_requests()
    cpu_before = cpu_seconds(roles)
    started = time.perf_counter()
    sweep = sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.system("bench"))
    while True:
        sweep.refresh_from_db()
        if sweep.finished_at:
            break
        if time.perf_counter() - started > 900:
            sys.exit(f"sweep stuck at {sweep.done}/{sweep.total}")
        time.sleep(0.2)
    wall = time.perf_counter() - started
    rate = sweep.total / wall
    counts = control.requests()
    print(f"\n{label}: {sweep.total} tenants in {wall:.1f} s = {rate:.0f} tenant tests/s "
          f"({sweep.succeeded} verified, {sweep.failed} not)")
    print(f"  emulator calls by endpoint: {json.dumps(counts.get('by_endpoint', counts), sort_keys=True)}")
    cpu = {role: seconds - cpu_before.get(role, 0.0) for role, seconds in cpu_seconds(roles).items()}
    print(f"  CPU ms per tenant test ({os.cpu_count()} cores): "
          + ", ".join(f"{role} {1000 * seconds / sweep.total:.1f}" for role, seconds in sorted(cpu.items()))
          + f"; total {1000 * sum(cpu.values()) / sweep.total:.1f} "
          f"({100 * sum(cpu.values()) / (wall * os.cpu_count()):.0f}% of the machine's CPU time)")
    return rate


def run_naive(control, info, n: int) -> float:
    """What users write first: new azure-identity credentials per tenant, one tenant after another."""
    import requests
    from azure.identity import ClientAssertionCredential, ManagedIdentityCredential

    from onboarding.models import CustomerTenant

    demo = info["demo"]
    tenants = list(CustomerTenant.objects.values_list("tenant_id", flat=True)[:n])
    os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = info["imds_url"]
    authority = info["base_url"].removeprefix("https://")
    control.reset_requests()
    ok = 0
    started = time.perf_counter()
    for tenant_id in tenants:
        mi = ManagedIdentityCredential(client_id=demo["managed_identity"]["client_id"])
        credential = ClientAssertionCredential(
            str(tenant_id), demo["app"]["app_id"],
            lambda mi=mi: mi.get_token("api://AzureADTokenExchange/.default").token,
            authority=authority, connection_verify=info["ca_path"])
        token = credential.get_token("https://management.azure.com/.default").token
        response = requests.get(f"{info['base_url']}/subscriptions", params={"api-version": "2022-12-01"},
                                headers={"Authorization": f"Bearer {token}"}, verify=info["ca_path"], timeout=30)
        ok += response.status_code == 200 and bool(response.json().get("value"))
    wall = time.perf_counter() - started
    rate = len(tenants) / wall
    counts = control.requests()
    print(f"\nnaive loop: {len(tenants)} tenants in {wall:.1f} s = {rate:.1f} tenant tests/s ({ok} verified)")
    print(f"  emulator calls by endpoint: {json.dumps(counts.get('by_endpoint', counts), sort_keys=True)}")
    return rate


if __name__ == "__main__":
    main()
