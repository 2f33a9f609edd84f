"""What the emergency stop's check costs a worker: estop_current() as a worker calls it (once per claimed batch and
once before each hop of each chain), on the configured cache (Redis with REDIS_CACHE_URL, else this process's own)
and database; and the row read it falls back on at a cache miss.

    DJANGO_DEBUG=1 DATABASE_URL=postgresql://... REDIS_CACHE_URL=redis://127.0.0.1:6379/8 python -m bench.estop_check
"""
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from exchange.services import estop_guard  # noqa: E402

CALLS = 2000


def _per_call_us(fn, calls=CALLS) -> tuple[float, float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main():
    setup_test_environment()
    from django.test.utils import get_runner

    runner = get_runner(settings)(verbosity=0)
    old = runner.setup_databases()
    try:
        cache.delete(estop_guard.CACHE_KEY)
        estop_guard.estop_current()  # cached from here on
        cached = _per_call_us(estop_guard.estop_current)
        row = _per_call_us(estop_guard._read, calls=500)
        halts = _per_call_us(lambda: estop_guard.estop_halts(1))
        backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, cache {backend}")
        print(f"estop_current() (cache hit): median {cached[0]:.1f} µs, p99 {cached[1]:.1f} µs")
        print(f"the row read on a miss:      median {row[0]:.1f} µs, p99 {row[1]:.1f} µs")
        print(f"estop_halts() before a hop:  median {halts[0]:.1f} µs, p99 {halts[1]:.1f} µs")
        hops = 4
        print(f"per token test: a claim's check (per batch) + {hops} hops ≈ {cached[0] + hops * halts[0]:.0f} µs")
    finally:
        runner.teardown_databases(old)


if __name__ == "__main__":
    main()
