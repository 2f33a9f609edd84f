"""Circuit breakers per endpoint and cloud, shared by every worker process through Django's cache (Redis).

When many tenants fail transiently on one endpoint at once, the endpoint is down, not the tenants: the breaker opens,
tests are held (re-queued with a delay, no attempt spent) and one test at a time probes the endpoint; the first answer
closes it. Without a cache (it failed), there is no breaker: tests run and their retries are the only protection.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from exchange import faults
from exchange.clouds import CLOUDS

logger = logging.getLogger(__name__)
ENDPOINTS = faults.ENDPOINTS  # one vocabulary: the chain reports where it failed in these names
BUCKET_SECONDS = 10  # failures and answers are counted per bucket; a window is the last few buckets


@dataclass(frozen=True)
class Outage:
    cloud: str
    endpoint: str
    since: datetime
    failures: int = 0  # tenants that had failed on the endpoint within the window when it opened

    def minutes(self, now: datetime) -> float:
        return (now - self.since).total_seconds() / 60

    def expired(self, now: datetime) -> bool:
        """Outlasted what a sweep waits for (SWEEP_OUTAGE_MAX_MINUTES): held tests are finished, naming it."""
        return self.minutes(now) >= settings.SWEEP_OUTAGE_MAX_MINUTES

    def describe(self, now: datetime) -> dict:
        return {"endpoint": self.endpoint, "cloud": self.cloud, "since": self.since.isoformat(),
                "minutes": round(self.minutes(now), 1)}


def _key(cloud: str, endpoint: str, *parts) -> str:
    return ":".join(("breaker", cloud, endpoint, *map(str, parts)))


# A sweep's tail retries few tenants, minutes apart: whether an endpoint has been failing for many is judged over
# this many windows (the breaker itself opens on one).
DEGRADED_WINDOWS = 5


def _buckets(now: datetime, windows: int = 1) -> list[int]:
    last = int(now.timestamp() // BUCKET_SECONDS)
    return list(range(last - max(1, int(windows * settings.BREAKER_WINDOW_SECONDS // BUCKET_SECONDS)) + 1, last + 1))


def outages_open(*, now: datetime | None = None) -> dict[tuple[str, str], Outage]:
    """The open breakers, by (cloud, endpoint): one read of the cache."""
    keys = {(cloud, endpoint): _key(cloud, endpoint) for cloud in CLOUDS for endpoint in ENDPOINTS}
    try:
        found = cache.get_many(list(keys.values()))
    except Exception as exc:  # noqa: BLE001 - the cache is down: no breaker, tests run
        logger.warning("circuit breakers unreadable (%s): tests run unguarded", type(exc).__name__)
        return {}
    return {pair: Outage(pair[0], pair[1], found[key]["since"], found[key]["failures"])
            for pair, key in keys.items() if key in found}


def probe_take(outage: Outage, *, now: datetime | None = None) -> bool:
    """Half-open: one test per BREAKER_PROBE_SECONDS may try the endpoint — the first to ask once a probe is due."""
    now = now or timezone.now()
    state_key = _key(outage.cloud, outage.endpoint)
    try:
        state = cache.get(state_key)
        if state is None:
            return True  # closed meanwhile
        if now < state["probe_at"]:
            return False
        slot = _key(outage.cloud, outage.endpoint, "probe", int(state["probe_at"].timestamp()))
        if not cache.add(slot, 1, timeout=int(settings.BREAKER_PROBE_SECONDS * 4) + 60):
            return False  # another process took this probe
        cache.set(state_key, {**state, "probe_at": now + timedelta(seconds=settings.BREAKER_PROBE_SECONDS)},
                  timeout=None)
        return True
    except Exception as exc:  # noqa: BLE001
        logger.warning("circuit breaker unreadable (%s): the test runs", type(exc).__name__)
        return True


def breaker_observe(*, counts: dict[tuple[str, str], list[int]], now: datetime | None = None
                    ) -> dict[tuple[str, str], Outage]:
    """Count a batch's answers and transient failures per (cloud, endpoint): [answered, failed]. Opens a breaker when
    at least BREAKER_MIN_FAILURES tenants and BREAKER_FAILURE_RATIO of the calls failed within the window; closes an
    open one when its endpoint answered. Returns the breakers open afterwards."""
    now = now or timezone.now()
    bucket = _buckets(now)[-1]
    ttl = int(DEGRADED_WINDOWS * settings.BREAKER_WINDOW_SECONDS) + 2 * BUCKET_SECONDS
    try:
        for (cloud, endpoint), pair in counts.items():
            for kind, n in zip(("ok", "fail"), pair, strict=True):
                if n:
                    key = _key(cloud, endpoint, kind, bucket)
                    cache.add(key, 0, timeout=ttl)
                    cache.incr(key, n)
        opened = outages_open(now=now)
        for (cloud, endpoint), (answered, failed) in counts.items():
            pair = (cloud, endpoint)
            if pair in opened and answered:
                _close(cloud, endpoint, now)
                del opened[pair]
            elif pair not in opened and failed:
                window = cache.get_many([_key(cloud, endpoint, kind, b) for kind in ("ok", "fail")
                                         for b in _buckets(now)])
                fails = sum(v for k, v in window.items() if ":fail:" in k)
                oks = sum(v for k, v in window.items() if ":ok:" in k)
                if fails >= settings.BREAKER_MIN_FAILURES and fails >= settings.BREAKER_FAILURE_RATIO * (fails + oks):
                    state = {"since": now, "failures": fails,
                             "probe_at": now + timedelta(seconds=settings.BREAKER_PROBE_SECONDS)}
                    if cache.add(_key(cloud, endpoint), state, timeout=None):
                        logger.warning("circuit breaker open: %s (%s), %d of %d calls failed within %d s",
                                       endpoint, cloud, fails, fails + oks, settings.BREAKER_WINDOW_SECONDS)
                    opened = outages_open(now=now)
        return opened
    except Exception as exc:  # noqa: BLE001
        logger.warning("circuit breakers not updated (%s)", type(exc).__name__)
        return {}


def endpoints_degraded(pairs: set[tuple[str, str]], *, now: datetime | None = None) -> set[tuple[str, str]]:
    """Those of `pairs` (cloud, endpoint) on which at least BREAKER_MIN_FAILURES tenants failed transiently within
    the last DEGRADED_WINDOWS windows: the endpoint is failing for many, so a tenant's failure there is not held
    against its attempts."""
    now = now or timezone.now()
    keys = {pair: [_key(*pair, "fail", b) for b in _buckets(now, DEGRADED_WINDOWS)] for pair in pairs}
    try:
        found = cache.get_many([key for ks in keys.values() for key in ks])
    except Exception as exc:  # noqa: BLE001
        logger.warning("circuit breakers unreadable (%s)", type(exc).__name__)
        return set()
    return {pair for pair, ks in keys.items() if sum(found.get(k, 0) for k in ks) >= settings.BREAKER_MIN_FAILURES}


def _close(cloud: str, endpoint: str, now: datetime) -> None:
    state = cache.get(_key(cloud, endpoint))
    cache.delete_many([_key(cloud, endpoint)] + [_key(cloud, endpoint, kind, b) for kind in ("ok", "fail")
                                                 for b in _buckets(now)])
    if state:
        logger.warning("circuit breaker closed: %s (%s) answers again after %.1f minutes", endpoint, cloud,
                       (now - state["since"]).total_seconds() / 60)
