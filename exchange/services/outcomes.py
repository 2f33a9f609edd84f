"""Recording what token tests' chains did: their steps, then a retry, a hold or the outcome — and finishing tests
(outcome, the tenants_tested signal, sweep counts, audit) in one transaction."""
import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from exchange import chain, faults, rollups
from exchange.diagnosis import diagnose_code
from exchange.models import Sweep, TokenTest, TokenTestStep
from exchange.selectors import fic_recently_created
from exchange.services.leases import hand_back, reconnect
from exchange.signals import tenants_tested
from portal.services import Actor, audit_record, audit_record_many

logger = logging.getLogger(__name__)
WORKER = Actor.system("worker")
OUTAGE = "outage"  # the diagnosis of a test finished because its endpoint stayed down past SWEEP_OUTAGE_MAX_MINUTES
PROPAGATING = "propagating"  # the outcome and diagnosis of a test waiting for a new FIC to propagate
FIC_NOT_ACCEPTED = "AADSTS70021"  # no FIC matches the assertion: a new one may still be propagating
THROTTLED = 429
# These hops run in the app's home tenant and cloud; every other hop in the customer tenant's cloud.
HOME_HOPS = (faults.IMDS, faults.HOME_DISCOVERY, faults.HOME_TOKEN)


@dataclass(frozen=True)
class Execution:
    test_id: int
    status: str
    retry_in: float | None = None


def endpoint_pair(test: TokenTest, endpoint: str) -> tuple[str, str]:
    """(cloud, endpoint) of a hop, as the circuit breaker counts it: the worker's identity and home tenant are in the
    app's cloud, the rest in the tenant's."""
    return (test.tenant.home_app.cloud if endpoint in HOME_HOPS else test.tenant.cloud, endpoint)


def throttled(result: chain.ChainResult) -> bool:
    """Microsoft said "come back later" (429, on the wire or replayed by MSAL): an instruction, not a failure. A
    throttled test is retried after Retry-After beyond TOKEN_TEST_MAX_ATTEMPTS, for as long as a sweep rides out an
    outage (SWEEP_OUTAGE_MAX_MINUTES): under heavy throttling a healthy tenant would otherwise run out of attempts."""
    return result.failure is not None and result.failure.http_status == THROTTLED


def backoff(attempt: int, retry_after: float | None) -> float:
    """Capped exponential backoff; never sooner than Retry-After (nor than MSAL's own 5 s replay window)."""
    delay = min(settings.TOKEN_TEST_RETRY_MAX_SECONDS, settings.TOKEN_TEST_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return max(delay, retry_after or 0.0)


def hand_back_for_retry(test_ids: list[int], *, owner: str) -> list[Execution]:
    """Tests our own failure stopped: back to the queue, due again after the base retry delay."""
    delay = settings.TOKEN_TEST_RETRY_BASE_SECONDS
    return [Execution(pk, TokenTest.Status.QUEUED, retry_in=delay)
            for pk in hand_back(test_ids, owner=owner, delay=delay)]


def record_or_hand_back(runs, *, owner: str, held: dict, degraded: set = frozenset(), now=None) -> list[Execution]:
    """Record the runs in one transaction; should that fail (a database error, a bug), each on its own, and hand back
    those that still cannot be recorded (if even that fails, their leases expire and the reaper takes them)."""
    if not runs:
        return []
    try:
        with transaction.atomic():
            return record(runs, owner=owner, held=held, degraded=degraded, now=now)
    except Exception as exc:  # noqa: BLE001
        logger.warning("a batch of %d token tests could not be recorded at once (%s): one by one", len(runs), exc)
        reconnect()
    executions, unrecorded = [], []
    for run in runs:
        try:
            with transaction.atomic():
                executions += record([run], owner=owner, held=held, degraded=degraded, now=now)
        except Exception as exc:  # noqa: BLE001
            logger.warning("token test %s could not be recorded (%s): handed back", run[0].pk, exc)
            reconnect()
            unrecorded.append(run[0].pk)
    return executions + (hand_back_for_retry(unrecorded, owner=owner) if unrecorded else [])


def _still_mine(runs, *, owner: str):
    """The runs whose test this execution still holds the lease of (another may have taken one over)."""
    mine = set(TokenTest.objects.select_for_update().filter(
        pk__in=[test.pk for test, _ in runs], status=TokenTest.Status.RUNNING, lease_owner=owner)
        .values_list("pk", flat=True))
    if len(mine) < len(runs):
        logger.warning("token tests %s: lease lost, results dropped", sorted({t.pk for t, _ in runs} - mine))
    return [(test, result) for test, result in runs if test.pk in mine]


def _steps_save(runs) -> None:
    """The steps, and each hop's latency in the hourly histograms (kept when old steps are pruned)."""
    steps = TokenTestStep.objects.bulk_create([
        TokenTestStep(test=test, attempt=test.attempts, name=s.name, started_at=s.started_at,
                      duration_ms=s.duration_ms, ok=s.ok, http_status=s.http_status,
                      error_code=s.error_code[:64], error=s.error[:64], message=s.message, trace_id=s.trace_id,
                      correlation_id=s.correlation_id, claims=s.claims, detail=s.detail)
        for test, result in runs if result is not None for s in result.steps
    ])
    rollups.hops_counted([(s.started_at, s.name, s.duration_ms) for s in steps])


def _next_step(test: TokenTest, result, outage, *, owner: str, degraded: set, now):
    """What follows from one run: an Execution (a hold or a retry), or (code, raw error) to finish the test with.

    A transient failure out of attempts is retried still while the outage window lasts when it was a throttle or its
    endpoint is failing for many tenants (`degraded`): neither is this tenant's doing."""
    if outage is not None and outage.expired(now):
        return OUTAGE, outage.describe(now)
    if outage is not None:
        delay = settings.BREAKER_PROBE_SECONDS * random.uniform(1.0, 1.5)
        ids = hand_back([test.pk], owner=owner, delay=delay, error={"held": outage.describe(now)})
        return Execution(test.pk, TokenTest.Status.QUEUED, retry_in=delay if ids else None)
    if (result.code == FIC_NOT_ACCEPTED and test.attempts < settings.TOKEN_TEST_PROPAGATION_ATTEMPTS
            and fic_recently_created(test.tenant.home_app)):
        return schedule_retry(test, settings.FIC_PROPAGATION_RETRY_SECONDS, owner=owner, outcome=PROPAGATING)
    riding_out = test.started_at > now - timedelta(minutes=settings.SWEEP_OUTAGE_MAX_MINUTES)
    not_its_doing = throttled(result) or endpoint_pair(test, result.endpoint) in degraded
    if result.transient and (test.attempts < settings.TOKEN_TEST_MAX_ATTEMPTS or (not_its_doing and riding_out)):
        return schedule_retry(test, backoff(test.attempts, result.retry_after), owner=owner)
    return (faults.TRANSIENT if result.transient else result.code), result.raw_error


def record(runs: list[tuple[TokenTest, chain.ChainResult | None]], *, owner: str, held: dict,
           degraded: set = frozenset(), now=None) -> list[Execution]:
    """The steps of every run, and what follows from each (a retry, a hold, or the outcome); inside the caller's
    transaction, for the tests this execution still holds the lease of."""
    runs = _still_mine(runs, owner=owner)
    _steps_save(runs)
    now = now or timezone.now()
    executions, finishing = {}, []
    for test, result in runs:
        step = _next_step(test, result, held.get(test.pk), owner=owner, degraded=degraded, now=now)
        if isinstance(step, Execution):
            executions[test.pk] = step
        else:
            finishing.append((test, *step))
    statuses = finish(finishing, owner=owner)
    for test, _, _ in finishing:
        executions[test.pk] = Execution(test.pk, statuses.get(test.pk, TokenTest.Status.FAILED))
    return [executions[test.pk] for test, _ in runs]


def schedule_retry(test: TokenTest, delay: float, *, owner: str, outcome: str = "") -> Execution:
    """Back to the queue until `delay` has passed — only if this execution still runs it (never reopens a test)."""
    retried = TokenTest.objects.filter(pk=test.pk, status=TokenTest.Status.RUNNING, lease_owner=owner).update(
        status=TokenTest.Status.QUEUED, not_before=timezone.now() + timedelta(seconds=delay), outcome=outcome,
        diagnosis_code=PROPAGATING if outcome == PROPAGATING else "", lease_owner="", lease_expires_at=None)
    if not retried:
        logger.warning("token test %s: not running under our lease any more, no retry", test.pk)
        return Execution(test.pk, test.status)
    return Execution(test.pk, TokenTest.Status.QUEUED, retry_in=delay)


def token_test_finish(*, test: TokenTest, code: str, raw_error: dict | None = None) -> str | None:
    """Record the outcome, the tenant's health and the sweep's counts, and audit it — in one transaction.

    Returns the test's new status, or None when it was not running (someone else finished it)."""
    status = finish([(test, code, raw_error)]).get(test.pk)
    if not transaction.get_connection().in_atomic_block:
        test.refresh_from_db()
    return status


def _running(items, *, owner: str | None, expired_before) -> set[int]:
    running = TokenTest.objects.select_for_update().filter(
        pk__in=[test.pk for test, _, _ in items], status=TokenTest.Status.RUNNING)
    if owner is not None:
        running = running.filter(lease_owner=owner)
    if expired_before is not None:
        running = running.filter(Q(lease_expires_at__lt=expired_before) | Q(lease_expires_at=None))
    return set(running.values_list("pk", flat=True))


def _grouped(done):
    """The finished tests grouped for a few statements: by (status, outcome, code, error), tenants by outcome, and
    per sweep [succeeded, failed]; with {test id: new status}."""
    tests, tenants, sweeps = defaultdict(list), defaultdict(list), defaultdict(lambda: [0, 0])
    statuses = {}
    for test, diagnosis, raw_error in done:
        verified = diagnosis.outcome == TokenTest.Outcome.VERIFIED
        statuses[test.pk] = TokenTest.Status.SUCCEEDED if verified else TokenTest.Status.FAILED
        kept = not diagnosis.recognised or diagnosis.code == OUTAGE  # the raw error, or the outage's facts
        error = json.dumps((raw_error or {}) if kept else {}, sort_keys=True, default=str)
        tests[(statuses[test.pk], diagnosis.outcome, diagnosis.code, error)].append(test.pk)
        tenants[diagnosis.outcome].append(test.tenant_id)  # an outage's is "transient": the tenant's last check only
        if test.sweep_id:
            sweeps[test.sweep_id][0 if verified else 1] += 1
    return tests, tenants, sweeps, statuses


def _audit_finished(done) -> None:
    # The trail records what changed: every test someone asked for, and a swept tenant only when its outcome
    # differs from its last check's (a sweep of 1,000 unchanged tenants is one "sweep.finished" event, not 1,000;
    # nor is an outage that lasts several sweeps recorded again in each).
    audit_record_many([
        {"action": "tokentest.finished", "actor": WORKER, "target_type": "tokentest", "target_id": str(test.pk),
         "tenant_id": str(test.tenant.tenant_id), "detail": {"outcome": diagnosis.outcome, "code": diagnosis.code,
                                                              "attempts": test.attempts, "previous": _previous(test)}}
        for test, diagnosis, _ in done if not test.sweep_id or _previous(test) != diagnosis.outcome])


def _previous(test: TokenTest) -> str:
    return test.tenant.last_check_outcome or test.tenant.last_outcome


def finish(items: list[tuple[TokenTest, str, dict | None]], *, owner: str | None = None,
           expired_before=None) -> dict[int, str]:
    """Finish running tests: outcomes, the tenants_tested signal, sweeps' counts and the audit trail, in one
    transaction and a few statements for the whole batch (one per distinct outcome, not one per test). Only tests
    still running (under `owner`'s lease, or a lease expired before `expired_before`) are finished: another process
    may have finished or taken over one, and it is left as it is. Returns {test id: new status} for those finished."""
    if not items:
        return {}
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        running = _running(items, owner=owner, expired_before=expired_before)
        done = [(test, diagnose_code(code, raw_error), raw_error) for test, code, raw_error in items
                if test.pk in running]
        tests, tenants, sweeps, statuses = _grouped(done)
        for (status, outcome, code, error), pks in tests.items():
            TokenTest.objects.filter(pk__in=pks).update(status=status, outcome=outcome, diagnosis_code=code,
                                                        finished_at=now, not_before=None, error=json.loads(error),
                                                        lease_owner="", lease_expires_at=None)
        rollups.tests_counted([(now, diagnosis.outcome, diagnosis.code) for _, diagnosis, _ in done])
        _audit_finished(done)  # before the signal: "previous" is the tenant's outcome before this test
        for outcome, pks in tenants.items():
            tenants_tested.send(sender=TokenTest, tenant_pks=pks, outcome=outcome, at=now)
        for sweep_id, (succeeded, failed) in sweeps.items():  # last: "sweep.finished" follows its tests' events
            _sweep_counted(sweep_id, succeeded, failed, now)
    return statuses


def _sweep_counted(sweep_id: int, succeeded: int, failed: int, now) -> None:
    """Count finished tests on their sweep; the update that counts the last one closes it and audits the totals.
    In the common case (not the last ones) that is one statement; the row lock keeps the `done` condition exact
    under concurrent workers (PostgreSQL re-checks it after waiting for the lock)."""
    n = succeeded + failed
    counts = {"done": F("done") + n, "succeeded": F("succeeded") + succeeded, "failed": F("failed") + failed}
    sweeps = Sweep.objects.filter(pk=sweep_id)
    if sweeps.filter(done__lt=F("total") - n).update(**counts):
        return
    sweeps.update(**counts, finished_at=Coalesce(F("finished_at"), now))
    closed = sweeps.filter(finished_at=now).values("total", "succeeded", "failed").first()
    if closed is not None:
        audit_record(action="sweep.finished", actor=WORKER, target_type="sweep", target_id=str(sweep_id),
                     detail=closed)
