"""The emergency stop as the workers and sweeps see it: a cached flag (the shared cache, the database as truth) read
where a sweep starts, where a worker claims token tests and before each hop of a running chain. The stop's own writes
are exchange.services.estop's; they publish the new state here."""
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from exchange.models import EmergencyStop, TokenTest

CACHE_KEY = "exchange:emergency-stop"
OFF = "off"  # cached when no stop is in force (None means "not cached")
# Before each hop a chain asks this process's answer of up to a second ago: a Redis round trip per hop (~65 µs)
# would cost more than the rest of the check, and a second is well within "stops at its next hop".
HALT_CHECK_SECONDS = 1.0
_recent: list = [0.0, None]  # [valid until (monotonic), StopState | None] of this process
PAUSES_TESTS = (EmergencyStop.Stage.STOPPED, EmergencyStop.Stage.CANARY)


class EmergencyStopped(Exception):
    """Refused because of the emergency stop (or a restart step out of order)."""


@dataclass(frozen=True)
class StopState:
    pk: int
    stage: str
    reason: str
    by: str
    at: datetime
    canary_test_id: int | None

    @property
    def tests_paused(self) -> bool:
        return self.stage in PAUSES_TESTS

    @property
    def sweeps_paused(self) -> bool:
        return True  # until the restart's last stage ends the stop

    @property
    def stage_label(self) -> str:
        return EmergencyStop.Stage(self.stage).label

    def held(self) -> dict:
        """What a held test's `error.held` says (shown on its page): the stop, not the tenant."""
        return {"estop": self.pk, "since": self.at.isoformat(), "by": self.by, "reason": self.reason[:300]}

    def refusal(self, what: str) -> str:
        return (f"{what} refused: an emergency stop is in force since {self.at:%Y-%m-%d %H:%M} UTC ({self.by}: "
                f"{self.reason[:200]}). {self.stage_label}.")


def _read() -> dict | str:
    stop = (EmergencyStop.objects.filter(current=True)
            .values("pk", "stage", "reason", "engaged_by_label", "engaged_at", "canary_test_id").first())
    if stop is None:
        return OFF
    return {"pk": stop["pk"], "stage": stop["stage"], "reason": stop["reason"], "by": stop["engaged_by_label"],
            "at": stop["engaged_at"], "canary_test_id": stop["canary_test_id"]}


def estop_current() -> StopState | None:
    """The stop in force, if any. One cache read (Redis in production, shared by every process); on a miss the row
    is read and cached for ESTOP_CACHE_SECONDS — the longest a process without the shared cache may lag behind."""
    try:
        found = cache.get(CACHE_KEY)
    except Exception:  # noqa: BLE001 - the cache down must not hide a stop: the database says
        found = _read()
    if found is None:
        found = _read()
        try:
            cache.set(CACHE_KEY, found, settings.ESTOP_CACHE_SECONDS)
        except Exception:  # noqa: BLE001, S110 - the next read tries again
            pass
    return None if found == OFF else StopState(**found)


def estop_publish() -> None:
    """After a change commits: every process reads the new state at its next check (its cache read)."""
    cache.delete(CACHE_KEY)  # now too: a reader inside this transaction (or a test's) reads the row
    _recent[0] = 0.0

    def publish():
        try:
            cache.set(CACHE_KEY, _read(), settings.ESTOP_CACHE_SECONDS)
        except Exception:  # noqa: BLE001 - then readers fall back on the row
            cache.delete(CACHE_KEY)
    transaction.on_commit(publish)


def estop_tests_held(test_ids: list[int]) -> list[int]:
    """The tests of `test_ids` the stop holds (all but the restart's canary): left queued, their attempt not spent,
    marked with the stop (no outcome, nothing held against their tenant). Stage 2 of the restart sends them again."""
    state = estop_current()
    if state is None or not state.tests_paused:
        return []
    held = [pk for pk in test_ids if pk != state.canary_test_id]
    if held:
        TokenTest.objects.filter(pk__in=held, status=TokenTest.Status.QUEUED).update(
            error={"held": state.held()}, not_before=timezone.now())
    return held


def _recent_state() -> StopState | None:
    if _recent[0] < time.monotonic():
        _recent[:] = [time.monotonic() + HALT_CHECK_SECONDS, estop_current()]
    return _recent[1]


def estop_halts(test_id: int) -> bool:
    """Checked before each hop of a running chain: the stop came in while it ran."""
    state = _recent_state()
    return state is not None and state.tests_paused and test_id != state.canary_test_id


def estop_halted_error() -> dict:
    """The `error` of a test whose chain estop_halts stopped: the stop that halted it."""
    state = _recent_state()
    return {"held": state.held()} if state is not None else {}


def estop_refuse_sweep() -> None:
    state = estop_current()
    if state is not None and state.sweeps_paused:
        raise EmergencyStopped(state.refusal("Sweep"))


CANARY_CANDIDATES = 20
RECENT_VERIFIED = 500


def canary_candidates() -> list[tuple[int, str]]:
    """(tenant pk, label) of tenants recently verified, newest first: a canary should be one known to work."""
    rows = (TokenTest.objects.filter(outcome=TokenTest.Outcome.VERIFIED).order_by("-pk")  # newest first, on the pk
            .values_list("tenant_id", "tenant__primary_domain", "tenant__tenant_id")[:RECENT_VERIFIED])
    seen: dict[int, str] = {}
    for pk, domain, tenant_id in rows:
        if pk not in seen:
            seen[pk] = f"{domain or tenant_id} ({tenant_id})"
    return list(seen.items())[:CANARY_CANDIDATES]
