"""Benchmark: how fast the audit chain is appended, checkpointed and verified (full walk and --quick).

    .venv/bin/python bench/audit_verify.py [--events 100000] [--database-url sqlite:///var/bench-audit.sqlite3]

A fresh database (SQLite under var/ by default; a PostgreSQL URL works too and is emptied first), N events appended
in batches of 1,000 as a sweep appends them, a checkpoint, 1,000 more events; then the full verification and the
quick one (from the checkpoint). Prints events per second for each, and the incremental check (the audit page's, from the verified point the full walk
recorded) after 1,000 more.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'var' / 'bench-audit.sqlite3'}")
    args = parser.parse_args()
    if args.database_url.startswith("sqlite:///"):
        Path(args.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "DJANGO_DEBUG": "1", "LOG_LEVEL": "WARNING",
                       "DATABASE_URL": args.database_url, "AUDIT_KEY": "bench-audit-key-0123456789abcdef012345",
                       "AUDIT_CHECKPOINT_DIR": tempfile.mkdtemp(prefix="bench-audit-checkpoints-")})
    import django

    django.setup()
    from django.core.management import call_command

    from portal.selectors import audit_chain_verify
    from portal.services import Actor, audit_checkpoint_write, audit_record_many
    from portal.verification import audit_verification_record, audit_verification_run

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    actor = Actor.system("bench")

    def append(n):
        for start in range(0, n, 1000):
            audit_record_many([{"action": "bench.token_test", "actor": actor, "target_type": "tokentest",
                                "target_id": str(start + i), "tenant_id": "aaaaaaaa-0000-4000-8000-000000000001",
                                "detail": {"outcome": "verified", "attempts": 1, "steps": 3}}
                               for i in range(min(1000, n - start))])

    started = time.perf_counter()
    append(args.events)
    appended = time.perf_counter() - started
    started = time.perf_counter()
    audit_checkpoint_write(reason="manual")
    checkpointed = time.perf_counter() - started
    append(1000)
    started = time.perf_counter()
    full = audit_chain_verify()
    full_s = time.perf_counter() - started
    started = time.perf_counter()
    quick = audit_chain_verify(full=False)
    quick_s = time.perf_counter() - started
    assert full.ok and quick.ok, (full.problems, quick.problems)
    audit_verification_record(mode="full", report=full, label="bench")  # the verified point
    append(1000)
    started = time.perf_counter()
    incremental = audit_verification_run(mode="incremental")
    incremental_s = time.perf_counter() - started
    assert incremental.status == "intact", incremental.problems
    print(f"database: {args.database_url.split('://')[0]}, {args.events + 1000:,} events")
    print(f"append (batches of 1,000): {args.events / appended:,.0f} events/s")
    print(f"checkpoint: {checkpointed * 1000:.1f} ms")
    print(f"full verification: {full.checked:,} events in {full_s:.2f} s ({full.checked / full_s:,.0f} events/s)")
    print(f"quick verification (from the checkpoint): {quick.checked:,} events in {quick_s * 1000:.0f} ms")
    print(f"incremental verification (the page's, from the verified point, 1,000 new events): {incremental.checked:,} "
          f"events in {incremental_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
