"""Fault suite: sweeps of N tenants on a real prefork worker, PostgreSQL, a Redis of its own and the emulator, put
through crashes and outages. Every bench tenant is healthy, so any outcome but "verified" is a wrong failure.

    .venv/bin/python bench/faults.py [--small] [--tenants 1000] [--only pool-kill,redis-restart] [--keep-going]

For each scenario it prints: tenants, verified, wrongly failed (by code), lost (still queued at the end), run twice
at once (a test whose steps overlap: two attempts at the same time), stuck (still running at the end), the sweep's
counts checked against its tests, retries sooner than 5 s, and the time to recover after a crash (from the kill to the
moment every test the dead process held runs again). Exits 1 on any wrongly failed, lost, doubled or stuck test.

It starts its own redis-server (broker and shared cache) on a free port — the one it kills — and a celery beat (the
reaper), and creates and drops its own database on the PostgreSQL of FAULTS_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/keyless_faults). It never touches a service it did not start.
"""
import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sweep import bench_world, ensure_database, free_port, proc_stat, start_emulator  # noqa: E402

DATABASE_URL = os.environ.get("FAULTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/keyless_faults")
SMALL = ["pool-kill", "redis-restart", "home-429", "throttle-20pct-cold", "duplicates-during-retries"]
FULL = ["pool-kill", "main-kill", "redis-restart", "pg-terminate", "token-down-30s", "token-down-5min",
        "throttle-20pct-cold", "errors-20pct-cold", "home-429", "duplicates-during-retries"]


@dataclass
class Outcome:
    name: str
    tenants: int = 0
    verified: int = 0
    wrong: Counter = field(default_factory=Counter)
    lost: int = 0
    retrying: int = 0
    doubled: int = 0
    stuck: int = 0
    counts_ok: bool = True
    early_retries: int = 0
    recovery: float | None = None
    wall: float = 0.0
    note: str = ""

    @property
    def bad(self) -> bool:
        return bool(sum(self.wrong.values()) or self.lost or self.doubled or self.stuck or not self.counts_ok)

    def line(self) -> str:
        wrong = sum(self.wrong.values())
        codes = f" ({', '.join(f'{c} {n}' for c, n in self.wrong.most_common())})" if wrong else ""
        recovery = f"{self.recovery:.1f} s" if self.recovery is not None else "-"
        return (f"{self.name:27} tenants {self.tenants:5}  verified {self.verified:5}  wrongly failed {wrong}{codes}  "
                f"lost {self.lost}{f' (and {self.retrying} waiting for a retry)' if self.retrying else ''}  run twice at once {self.doubled}  stuck {self.stuck}  "
                f"counts {'ok' if self.counts_ok else 'WRONG'}  retries <5 s {self.early_retries}  "
                f"recovery {recovery}  wall {self.wall:.0f} s{'  ' + self.note if self.note else ''}")


class World:
    """The processes of one run: emulator, Redis, worker, beat; started and stopped by this script only."""

    def __init__(self, args, tmp: Path):
        self.args, self.tmp = args, tmp
        self.emulator, self.info = start_emulator(bench_world(args.tenants), args.latency_ms, tmp)
        self.redis_port = args.redis_port or free_port()
        self.redis = None
        self.start_redis()
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "0",
                    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "localhost",
                    "AUDIT_KEY": secrets.token_urlsafe(32), "AUDIT_CHECKPOINT_DIR": str(tmp / "audit-checkpoints"),
                    "DATABASE_URL": args.database_url, "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                    "REDIS_CACHE_URL": f"redis://127.0.0.1:{self.redis_port}/1",
                    "ENTRA_BASE_URL": self.info["base_url"], "ENTRA_CA_BUNDLE": self.info["ca_path"],
                    "IMDS_URL": self.info["imds_url"], "LOG_LEVEL": "ERROR", "TOKEN_TEST_THREADS": str(args.threads),
                    "TOKEN_TEST_RESEND_SECONDS": str(args.resend_seconds), "PORTAL_VAR_DIR": str(tmp / "var")}
        self.worker = self.beat = None

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(port=self.redis_port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        sys.exit("redis-server did not start")

    def kill_redis(self) -> None:
        self.redis.send_signal(signal.SIGKILL)
        self.redis.wait()

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork", "--concurrency",
             str(self.args.processes), "-l", "ERROR", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=self.log("worker"))
        deadline = time.monotonic() + 60
        while len(self.pool_pids()) < self.args.processes:
            if time.monotonic() > deadline or self.worker.poll() is not None:
                sys.exit("the worker did not start")
            time.sleep(0.2)
        time.sleep(1)  # the pool's children finish importing

    def log(self, name: str):
        return open(self.tmp / f"{name}.log", "a")  # noqa: SIM115 - the child keeps it

    def pool_pids(self) -> list[int]:
        if self.worker is None:
            return []
        return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if (st := proc_stat(pid)) and st[1] == self.worker.pid]

    def stop_worker(self, sig=signal.SIGTERM) -> None:
        if self.worker is None:
            return
        children = self.pool_pids()
        if self.worker.poll() is None:
            self.worker.send_signal(sig)
            try:
                self.worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        for pid in children:  # a SIGKILLed parent's children (ours) are not left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.worker = None

    def start_beat(self) -> None:
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "beat", "-l", "ERROR", "-s",
             str(self.tmp / "celerybeat-schedule")], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
            stderr=self.log("beat"))

    def stop(self) -> None:
        self.stop_worker()
        for process in (self.beat, self.redis, self.emulator):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def flush_cache(world: World) -> None:
    import redis

    redis.Redis(port=world.redis_port, db=1).flushdb()


def wait_idle(seconds: float = 60) -> None:
    """No test left queued or running (the previous scenario's stragglers would blur the next)."""
    from exchange.models import TokenTest

    deadline = time.monotonic() + seconds
    while TokenTest.objects.filter(status__in=["queued", "running"]).exists() and time.monotonic() < deadline:
        time.sleep(0.5)


def start_sweep():
    from exchange.models import Sweep
    from onboarding.services import sweep_all_start
    from portal.services import Actor

    return sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.system("faults"))


def wait_sweep(sweep, deadline_s: float, during=None) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        sweep.refresh_from_db()
        if sweep.finished_at:
            break
        if during:
            during(time.monotonic() - started)
        time.sleep(0.2)
    return time.monotonic() - started


def running_under(pids: set[int]) -> set[int]:
    """Tests running under a lease of one of these processes (owner "host:pid:execution")."""
    from exchange.models import TokenTest

    return {pk for pk, owner in TokenTest.objects.filter(status="running").values_list("pk", "lease_owner")
            if owner.count(":") >= 2 and int(owner.split(":")[-2]) in pids}


def wait_for_tests_of(pids: set[int], seconds: float = 30) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if held := running_under(pids):
            return held
        time.sleep(0.01)
    return set()


def recovery_after(test_ids: set[int], killed_at, seconds: float = 120) -> float | None:
    """Seconds from the kill until every one of `test_ids` runs again (a new attempt started) or has finished."""
    from exchange.models import TokenTest

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = TokenTest.objects.filter(pk__in=test_ids).values_list("attempt_started_at", "finished_at", "status")
        times = [started if started and started > killed_at else finished for started, finished, _ in rows]
        if all(t is not None and t > killed_at for t in times):
            return (max(times) - killed_at).total_seconds()
        time.sleep(0.1)
    return None


def restart_timeline(test_ids: set[int], killed_at, world_started) -> str:
    """When, in seconds after the kill, the new worker was up, the reaper took the tests back and sent the sweep's
    queued tests again, and each held test's new attempt started (its first step after the kill): min/median/max."""
    from exchange.models import TokenTestStep
    from portal.models import AuditEvent

    firsts: dict[int, float] = {}
    for test_id, started in TokenTestStep.objects.filter(test_id__in=test_ids, started_at__gt=killed_at).values_list(
            "test_id", "started_at"):
        firsts[test_id] = min(firsts.get(test_id, 1e9), (started - killed_at).total_seconds())
    reaps = [(round((at - killed_at).total_seconds(), 1), d.get("requeued"), d.get("resent")) for at, d in
             AuditEvent.objects.filter(action="tokentest.reaped", at__gt=killed_at).order_by("at")
             .values_list("at", "detail")[:6]]
    times = sorted(firsts.values())
    spread = (f"{times[0]:.1f}/{times[len(times) // 2]:.1f}/{times[-1]:.1f} s ({len(times)} of {len(test_ids)})"
              if times else "none")
    return (f"worker up +{(world_started - killed_at).total_seconds():.1f} s; reaper (at s, requeued, resent) "
            f"{reaps}; held tests' new attempts started min/median/max {spread}")


def judge(name: str, sweep, wall: float, **extra) -> Outcome:
    from exchange.models import TokenTest, TokenTestStep

    sweep.refresh_from_db()
    from django.utils import timezone

    tests = list(TokenTest.objects.filter(sweep=sweep).values("pk", "status", "outcome", "diagnosis_code",
                                                               "not_before"))
    now = timezone.now()
    out = Outcome(name, tenants=sweep.total, wall=wall, **extra)
    out.verified = sum(t["outcome"] == "verified" for t in tests)
    out.wrong = Counter(t["diagnosis_code"] or t["outcome"] for t in tests
                        if t["status"] in ("succeeded", "failed") and t["outcome"] != "verified")
    # Queued at the end: lost, unless a retry is scheduled (a throttled test backing off past the deadline).
    out.retrying = sum(t["status"] == "queued" and t["not_before"] is not None and t["not_before"] > now
                       for t in tests)
    out.lost = sum(t["status"] == "queued" for t in tests) - out.retrying
    out.stuck = sum(t["status"] == "running" for t in tests)
    finished = [t for t in tests if t["status"] in ("succeeded", "failed")]
    out.counts_ok = (sweep.done, sweep.succeeded) == (len(finished), out.verified) and (
        sweep.finished_at is not None) == (len(finished) == sweep.total)
    steps: dict[int, list] = {}
    for test_id, attempt, started, ms in (TokenTestStep.objects.filter(test__sweep=sweep)
                                          .order_by("test_id", "started_at")
                                          .values_list("test_id", "attempt", "started_at", "duration_ms")):
        steps.setdefault(test_id, []).append((attempt, started, started + timedelta(milliseconds=ms)))
    for runs in steps.values():
        # One chain's steps follow one another: a step starting before the previous one ended is a second run.
        if any(b[1] < a[2] - timedelta(milliseconds=1) for a, b in zip(runs, runs[1:], strict=False)):
            out.doubled += 1
        ends = {}
        for attempt, started, ended in runs:
            if attempt - 1 in ends and attempt not in ends and (started - ends[attempt - 1]).total_seconds() < 5:
                out.early_retries += 1
            ends[attempt] = max(ended, ends.get(attempt, ended))
    return out


# --- scenarios ------------------------------------------------------------------------------------------------
def scenario(world: World, control, name: str) -> Outcome:
    from django.db import connection
    from django.utils import timezone

    deadline = world.args.deadline
    control.reset()
    extra = {}
    if name in ("pool-kill", "main-kill"):
        control.faults(arm={"latency_ms": 300})  # chains long enough to be killed in the middle of one
        sweep, t0 = start_sweep(), time.monotonic()
        target = world.pool_pids()[0] if name == "pool-kill" else world.worker.pid
        pids = {target} if name == "pool-kill" else set(world.pool_pids())
        wait_for_tests_of(pids)
        time.sleep(0.3)  # every process of the target mid-chain
        before = running_under(pids)
        killed_at = timezone.now()
        os.kill(target, signal.SIGKILL)
        if name == "main-kill":
            world.stop_worker(signal.SIGKILL)
        # What the dead processes left running, read once they are dead: a test that finished between a read before
        # the kill and the kill (finished_at < killed_at) would otherwise never "run again" and recovery_after would
        # wait its whole 120 s for it.
        held = running_under(pids)
        if name == "main-kill":
            world.start_worker()
        worker_up = timezone.now()
        control.faults(arm={"latency_ms": 0})
        extra["recovery"] = recovery_after(held, killed_at)
        wait_sweep(sweep, deadline)
        extra["note"] = (f"{len(held)} tests were running in the killed process(es) "
                         f"({len(before - held)} more, read just before the kill, had finished by then); "
                         f"{restart_timeline(held, killed_at, worker_up)}")
        return judge(name, sweep, time.monotonic() - t0, **extra)
    if name == "redis-restart":
        control.faults(arm={"latency_ms": 1500})  # batches in flight and in the queue when Redis dies
        sweep, t0 = start_sweep(), time.monotonic()
        time.sleep(0.5)
        world.kill_redis()
        time.sleep(2.0)
        world.start_redis()  # empty: the queue and the shared cache are lost
        restarted = time.monotonic()
        control.faults(arm={"latency_ms": 0})
        wait_sweep(sweep, deadline)
        extra["note"] = f"sweep finished {time.monotonic() - restarted:.0f} s after Redis came back"
        return judge(name, sweep, time.monotonic() - t0, **extra)
    if name == "pg-terminate":
        control.faults(arm={"latency_ms": 200})
        sweep, t0 = start_sweep(), time.monotonic()
        time.sleep(1.5)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            extra["note"] = f"{cursor.fetchone()[0]} worker connections terminated"
        control.faults(arm={"latency_ms": 0})
        wait_sweep(sweep, deadline)
        return judge(name, sweep, time.monotonic() - t0, **extra)
    if name.startswith("token-down"):
        seconds = 30 if name.endswith("30s") else 300
        from exchange.breaker import outages_open

        control.faults(token={"rate_503": 1.0, "retry_after": 1})
        sweep, t0 = start_sweep(), time.monotonic()
        opened = set()
        while time.monotonic() - t0 < seconds:
            opened |= set(outages_open())
            time.sleep(0.5)
        control.faults(token={"rate_503": 0.0})
        wait_sweep(sweep, deadline + seconds)
        from exchange.models import TokenTest

        most = max(TokenTest.objects.filter(sweep=sweep).values_list("attempts", flat=True))
        breakers = ", ".join(f"{endpoint} ({cloud})" for cloud, endpoint in sorted(opened)) or "none"
        return judge(name, sweep, time.monotonic() - t0, note=f"token endpoint answered 503 for {seconds} s; "
                     f"breakers opened: {breakers}; most attempts of a test: {most}")
    if name.endswith("20pct-cold"):
        world.stop_worker()
        flush_cache(world)  # no discovery documents in the shared cache, no client in memory
        world.start_worker()
        kind = {"rate_429": 0.2} if name.startswith("throttle") else {"rate_503": 0.2}
        control.faults(**{k: {**kind, "retry_after": 1} for k in ("discovery", "token", "arm")})
        sweep = start_sweep()
        wall = wait_sweep(sweep, deadline)
        return judge(name, sweep, wall, note=f"{kind} on discovery, token and ARM; cold cache and worker")
    if name == "home-429":
        world.stop_worker()
        world.start_worker()  # fresh processes: each proves the FIC in its home tenant first
        control.faults(token={"fail_next": 1, "fail_status": 429, "retry_after": 1})
        sweep = start_sweep()
        wall = wait_sweep(sweep, deadline)
        return judge(name, sweep, wall, note="one 429 on the first token request (a home proof)")
    if name == "duplicates-during-retries":
        from exchange.models import TokenTest
        from exchange.tasks import token_tests_run

        control.faults(token={"rate_503": 0.3, "retry_after": 1})
        sweep, sent = start_sweep(), [0]

        def resend(elapsed: float) -> None:  # every second: each waiting test's batch sent again, twice
            if elapsed > 20 or int(elapsed * 5) % 5:
                return
            ids = list(TokenTest.objects.filter(sweep=sweep, status="queued").values_list("pk", flat=True))
            for i in range(0, len(ids), 20):
                for _ in range(2):
                    token_tests_run.apply_async(args=[ids[i:i + 20]])
                    sent[0] += 1
            if elapsed > 10:
                control.faults(token={"rate_503": 0.0})

        wall = wait_sweep(sweep, deadline + 20, during=resend)
        return judge(name, sweep, wall, note=f"{sent[0]} duplicate batch messages")
    raise SystemExit(f"unknown scenario {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help=f"100 tenants, the telling scenarios: {', '.join(SMALL)}")
    parser.add_argument("--tenants", type=int)
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(FULL))
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--deadline", type=float, default=None, help="seconds a sweep may take before it is judged")
    parser.add_argument("--resend-seconds", type=float, default=20.0,
                        help="TOKEN_TEST_RESEND_SECONDS: a queued test whose message was lost is sent again after")
    parser.add_argument("--redis-port", type=int, default=0, help="port for the redis-server this suite starts")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    args.tenants = args.tenants or (100 if args.small else 1000)
    args.deadline = args.deadline or (120 if args.small else 300)
    names = args.only.split(",") if args.only else (SMALL if args.small else FULL)

    tmp = Path(tempfile.mkdtemp(prefix="keyless-faults-"))
    (tmp / "var").mkdir()
    ensure_database(args.database_url)
    world = World(args, tmp)
    results = []
    try:
        os.environ.update(world.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from bench.seed import seed_bench_tenants
        from emulator.control import Control

        seed_bench_tenants(world.info, bench_world(args.tenants))
        control = Control(world.info["base_url"], world.info["ca_path"])
        world.start_beat()
        world.start_worker()
        print(f"fault suite: {args.tenants} tenants, emulator {args.latency_ms} ms/call, prefork worker "
              f"{args.processes} x {args.threads} threads, Redis on :{world.redis_port} (ours), logs in {tmp}",
              flush=True)
        for name in names:
            wait_idle()
            flush_cache(world)  # no breaker or throttle state carried from one scenario to the next
            result = scenario(world, control, name)
            results.append(result)
            print(result.line(), flush=True)
    finally:
        world.stop()
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            ensure_database(args.database_url, drop_only=True)
    bad = [r.name for r in results if r.bad]
    print(f"\n{len(results)} scenarios; " + (f"FAILED: {', '.join(bad)}" if bad else "all clean"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
