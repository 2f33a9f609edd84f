"""Benchmark: background exports of 1M audit events and 1M token tests on PostgreSQL, and one started from a page
served by gunicorn (the request returns at once; a Celery worker writes the file; it is downloaded over HTTP).

    .venv/bin/python bench/exports.py [--rows 1000000] [--port 18300] [--no-gunicorn]

Creates its own database (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/h_exports_bench), fills it
in SQL (generate_series: 1M audit events, 10,000 tenants, 1M token tests), runs each export kind × format in this
process and prints rows/s, the peak RSS above the process's baseline (sampled every 20 ms) and the file size; then
drops the database.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/h_exports_bench")
WORK = Path(tempfile.mkdtemp(prefix="bench-exports-"))
ENV = {"DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "1", "LOG_LEVEL": "WARNING",
       "DATABASE_URL": DATABASE_URL, "AUDIT_KEY": "bench-exports-key-0123456789abcdef0123456",
       "AUDIT_CHECKPOINT_DIR": str(WORK / "checkpoints"), "EXPORT_DIR": str(WORK / "exports"),
       "CELERY_BROKER_URL": "filesystem://", "CELERY_FS_DIR": str(WORK / "celery"), "JOBS_QUEUE": "bench-exports"}

FILL = [
    """INSERT INTO portal_auditevent (seq, at, actor_kind, actor_id, actor_label, action, target_type, target_id,
           tenant_id, detail, ip, prev_hash, hash, scheme)
       SELECT i, now() - make_interval(secs => %(n)s - i), 'staff', (i %% 50)::text,
              CASE WHEN i %% 1000 = 0 THEN '=HYPERLINK("x")' ELSE 'operator' || (i %% 50) END,
              'tenant.tested', 'tokentest', i::text, 'aaaaaaaa-0000-4000-8000-' || lpad((i %% 10000)::text, 12, '0'),
              jsonb_build_object('outcome', 'verified', 'attempts', 1, 'steps', 3), '10.0.0.1',
              md5((i - 1)::text) || md5((i - 1)::text), md5(i::text) || md5(i::text), 2
       FROM generate_series(1, %(n)s) AS i""",
    """INSERT INTO onboarding_customer (name, contact_name, contact_email, notes, created_at)
       SELECT 'Customer ' || c, '', '', '', now() FROM generate_series(1, 1000) AS c""",
    """INSERT INTO exchange_homeapp (name, client_id, home_tenant_id, cloud, consent_version, probe_resource_id,
           mi_audience, verify_home_token, sign_in_audience, redirect_uris, graph_error, created_at)
       VALUES ('Bench app', gen_random_uuid(), gen_random_uuid(), 'global', 'v2', '', '', true, '', '[]', '{}', now())""",
    """INSERT INTO onboarding_customertenant (customer_id, tenant_id, cloud, primary_domain, display_name, region,
           home_app_id, created_at, consecutive_failures, last_outcome)
       SELECT (SELECT min(id) FROM onboarding_customer) + t %% 1000, gen_random_uuid(), 'global',
              'tenant' || t || '.example', '', '', (SELECT id FROM exchange_homeapp), now(), 0, ''
       FROM generate_series(1, 10000) AS t""",
    """INSERT INTO exchange_tokentest (tenant_id, trigger, status, outcome, diagnosis_code, error, attempts,
           queued_at, started_at, finished_at, lease_owner)
       SELECT (SELECT min(id) FROM onboarding_customertenant) + i %% 10000, 'sweep', 'succeeded',
              CASE WHEN i %% 7 = 0 THEN 'no_role' ELSE 'verified' END,
              CASE WHEN i %% 7 = 0 THEN 'ARM403' ELSE 'verified' END, '{}', 1,
              now() - make_interval(secs => %(n)s - i), now() - make_interval(secs => %(n)s - i),
              now() - make_interval(secs => %(n)s - i) + interval '200 milliseconds', ''
       FROM generate_series(1, %(n)s) AS i""",
]


def recreate_database(drop_only=False):
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def rss_kib() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


class PeakRss:
    def __enter__(self):
        self.base, self.peak, self._stop = rss_kib(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib() - self.base)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def in_process(user):
    from ops import exports
    from ops.export_models import ExportJob

    for kind in ("audit", "tokentests"):
        for fmt in ("csv", "jsonl"):
            job = ExportJob.objects.create(kind=kind, format=fmt, requested_by=user)
            t0, cpu0 = time.perf_counter(), time.process_time()
            with PeakRss() as rss:
                job = exports.export_execute(job_id=job.pk)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            assert job.status == "succeeded", job.error
            print(f"{kind:10} {fmt:5} {job.rows_done:>9,} rows in {wall:5.2f} s = {job.rows_done / wall:>9,.0f} rows/s;"
                  f" CPU here {cpu:.1f} s; peak RSS +{rss.peak / 1024:.1f} MiB; file {job.size / 2**20:,.0f} MiB; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)


def _signed_in(base: str, password: str):
    import requests

    session = requests.Session()
    for _ in range(150):
        try:
            login = session.get(f"{base}/login/", timeout=30)
            break
        except requests.RequestException:  # still booting
            time.sleep(0.2)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    session.post(f"{base}/login/", data={"username": "bench", "password": password, "csrfmiddlewaretoken": token},
                 timeout=10).raise_for_status()
    return session


def under_gunicorn(port: int, password: str):
    """Start an export from the audit page served by gunicorn (default 30 s timeout), a worker writes it."""
    env = {**os.environ, **ENV}
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", ENV["JOBS_QUEUE"],
                               "--pool", "solo", "-l", "WARNING"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        session = _signed_in(base, password)
        page = session.get(f"{base}/audit/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        t0 = time.perf_counter()
        started = session.post(f"{base}/exports/start/audit/", data={"format": "csv", "csrfmiddlewaretoken": token},
                               allow_redirects=False, timeout=30)
        answered = time.perf_counter() - t0
        job_url = started.headers["Location"]
        while "Download" not in (detail := session.get(f"{base}{job_url}", timeout=30).text):
            assert "Failed" not in detail, detail
            time.sleep(1)
        ready = time.perf_counter() - t0
        pk = job_url.strip("/").rsplit("/", 1)[1]
        lines = 0
        with session.get(f"{base}/exports/{pk}/download/", stream=True, timeout=30) as download:
            for chunk in download.iter_content(1 << 20):
                lines += chunk.count(b"\n")
        print(f"gunicorn: POST /exports/start/audit/ answered {started.status_code} in {answered * 1000:.0f} ms; "
              f"the worker's file was ready {ready:.1f} s later; downloaded {lines - 1:,} rows over HTTP "
              f"in {time.perf_counter() - t0 - ready:.1f} s", flush=True)
    finally:
        for process in (web, worker):
            process.terminate()
            process.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=18300)
    parser.add_argument("--no-gunicorn", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database (to EXPLAIN the exports' queries)")
    args = parser.parse_args()
    recreate_database()
    os.environ.update(ENV)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from portal.services import staff_user_create

    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            for statement in FILL:
                cursor.execute(statement, {"n": args.rows})
            cursor.execute("ANALYZE")
        print(f"filled {args.rows:,} audit events and {args.rows:,} token tests in {time.perf_counter() - t0:.0f} s")
        password = "bench-exports-password-0123"
        user = staff_user_create(username="bench", role="admin", password=password)
        in_process(user)
        if not args.no_gunicorn:
            connection.close()
            under_gunicorn(args.port, password)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(drop_only=True)


if __name__ == "__main__":
    main()
