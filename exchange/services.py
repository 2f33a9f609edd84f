"""Writes of exchange: starting, executing, finishing and reaping token tests; sweeps; registering apps/identities."""
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError

from exchange import chain
from exchange.breaker import Outage, breaker_observe, endpoints_degraded, outages_open, probe_take
from exchange.diagnosis import diagnose_code
from exchange.models import HomeApp, ManagedIdentity, Sweep, TokenTest, TokenTestStep
from exchange.selectors import fic_recently_created, worker_identity
from exchange.signals import tenants_tested
from portal.services import Actor, audit_record, audit_record_many

logger = logging.getLogger(__name__)
WORKER = Actor.system("worker")
IDENTITY_MAX_AGE = 60  # seconds a sweep's test may use this process's earlier read of the worker identity
# On Redis, 0 is served first: a sweep's fan-out waits behind single tests, retries and tests taken back from a dead
# worker (which would otherwise queue behind the rest of a 1,000-tenant sweep).
SWEEP_PRIORITY = 6
OUTAGE = "outage"  # the diagnosis of a test finished because its endpoint stayed down past SWEEP_OUTAGE_MAX_MINUTES


def _enqueue(test_ids: list[int], *, jitter: float = 0.0, batch: int = 1, countdown: float | None = None,
             priority: int | None = None) -> None:
    """Send the tests' tasks once the transaction commits: one task per test, or per `batch` tests (sweeps), after
    `countdown` seconds (a retry) or a random delay up to `jitter` (a scheduled sweep).

    A broker that cannot take them is logged, not raised: the tests stay queued and the reaper sends them again."""
    from exchange.tasks import token_test_run, token_tests_run

    def send():
        try:
            for i in range(0, len(test_ids), batch):
                delay = random.uniform(0, jitter) if jitter else countdown
                chunk = test_ids[i:i + batch]
                task, args = (token_test_run, chunk) if len(chunk) == 1 else (token_tests_run, [chunk])
                task.apply_async(args=args, countdown=delay, queue=settings.TOKEN_TEST_QUEUE, priority=priority)
        except OperationalError as exc:  # kombu's: the broker is unreachable (its own retries ran out)
            logger.warning("token tests %s not sent (%s): the reaper sends them again", test_ids[:20], exc)

    transaction.on_commit(send)


def token_test_start(*, tenant, trigger: str, actor: Actor, requested_by=None, sweep: Sweep | None = None) -> TokenTest:
    """Queue one token test for a tenant; the task is sent once the transaction commits."""
    test = TokenTest(tenant=tenant, trigger=trigger, requested_by=requested_by, sweep=sweep)
    test.full_clean(exclude=["tenant", "sweep", "requested_by"])
    test.save()
    audit_record(action="tokentest.queued", actor=actor, target_type="tokentest", target_id=str(test.pk),
                 tenant_id=str(tenant.tenant_id), detail={"trigger": trigger})
    _enqueue([test.pk])
    return test


@dataclass(frozen=True)
class Execution:
    test_id: int
    status: str
    retry_in: float | None = None


class _Crashed:
    """A chain that raised instead of returning: our own failure (e.g. the shared cache), never the tenant's."""

    failure = "infrastructure"
    transient = False

    def __init__(self, exc: BaseException):
        self.steps, self.code, self.error = [], "infrastructure", f"{type(exc).__name__}: {exc}"[:500]


def _is_infrastructure(result) -> bool:
    """Our own infrastructure failed (cache, database): the test is handed back, never recorded against the tenant."""
    return "infrastructure" in (getattr(result, "failure", None), getattr(result, "kind", None))


def _throttled(result) -> bool:
    """Microsoft said "come back later" (429): an instruction, not a failure. A throttled test is retried after
    Retry-After beyond TOKEN_TEST_MAX_ATTEMPTS, for as long as a sweep rides out an outage (SWEEP_OUTAGE_MAX_MINUTES):
    under heavy throttling a healthy tenant would otherwise run out of attempts and be marked failed."""
    return bool(getattr(result, "throttled", False)) or bool(result.steps and result.steps[-1].http_status == 429)


def _failed_endpoint(result) -> str:
    return getattr(result, "endpoint", None) or (result.steps[-1].name if result.steps else "")


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Capped exponential backoff; never sooner than Retry-After (nor than MSAL's own 5 s replay window)."""
    delay = min(settings.TOKEN_TEST_RETRY_MAX_SECONDS, settings.TOKEN_TEST_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return max(delay, retry_after or 0.0)


def _lease_owner() -> str:
    """Who runs an attempt: this process and this execution of a batch (a lease is never shared)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease_until(now) -> timedelta:
    return now + timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS)


# A retry's message is sent after its countdown, computed after not_before: it never arrives early from this host.
# The slack covers clocks of different hosts; a duplicate arriving sooner than this leaves the test to its retry.
CLAIM_EARLY = timedelta(seconds=1)


def _claim(test_ids: list[int], *, owner: str, now=None) -> list[TokenTest]:
    """Take the tests of `test_ids` that are due: queued and not waiting for a retry (not_before), or running under a
    lease that expired (their worker died: taken over). Each gets this execution's lease, in one transaction. A
    duplicate delivery, a test waiting for its retry, a live attempt or a finished test is left as it is."""
    now = now or timezone.now()
    due = (Q(status=TokenTest.Status.QUEUED) & (Q(not_before=None) | Q(not_before__lte=now + CLAIM_EARLY))) | Q(
        status=TokenTest.Status.RUNNING, lease_expires_at__lt=now, attempts__lt=settings.TOKEN_TEST_MAX_ATTEMPTS)
    for tries_left in (1, 0):
        try:
            with transaction.atomic():
                found = dict(TokenTest.objects.select_for_update().filter(due, pk__in=test_ids)
                             .values_list("pk", "status"))
                if found:
                    TokenTest.objects.filter(pk__in=found).update(
                        status=TokenTest.Status.RUNNING, started_at=Coalesce(F("started_at"), now),
                        attempt_started_at=now, lease_owner=owner, lease_expires_at=_lease_until(now),
                        attempts=F("attempts") + 1, not_before=None, error={})
            break
        except DatabaseError as exc:  # a connection terminated while idle is found broken only by its next query
            if not tries_left or connection.in_atomic_block:
                raise
            logger.warning("claim failed (%s): reconnecting once", exc)
            connection.close()
    taken = sorted(pk for pk, status in found.items() if status == TokenTest.Status.RUNNING)
    if taken:
        logger.warning("token tests %s taken over: their lease expired (worker lost)", taken)
    if len(found) < len(test_ids):
        logger.info("token tests %s not claimable (duplicate delivery, waiting for a retry, running or finished)",
                    sorted(set(test_ids) - set(found)))
    return list(TokenTest.objects.select_related("tenant", "tenant__home_app").filter(pk__in=found).order_by("pk"))


def _hand_back(test_ids: list[int], *, owner: str, delay: float = 0.0, error: dict | None = None) -> list[int]:
    """Running tests of this execution back to the queue, their attempt not spent (never started, held, or stopped by
    our own failure), due again in `delay` seconds. Returns those handed back (a lease lost meanwhile is not ours)."""
    now = timezone.now()
    fields = {"error": error} if error is not None else {}
    with transaction.atomic():
        ids = list(TokenTest.objects.select_for_update().filter(
            pk__in=test_ids, status=TokenTest.Status.RUNNING, lease_owner=owner).values_list("pk", flat=True))
        TokenTest.objects.filter(pk__in=ids).update(
            status=TokenTest.Status.QUEUED, attempts=F("attempts") - 1,
            started_at=Case(When(attempts__lte=1, then=Value(None)), default=F("started_at")),
            attempt_started_at=None, lease_owner="", lease_expires_at=None,
            not_before=now + timedelta(seconds=delay), **fields)
    return ids


def _renew(test_ids: list[int], *, owner: str) -> None:
    """The heartbeat: this execution's leases extended while its chains run."""
    try:
        TokenTest.objects.filter(pk__in=test_ids, status=TokenTest.Status.RUNNING, lease_owner=owner).update(
            lease_expires_at=_lease_until(timezone.now()))
    except DatabaseError as exc:  # e.g. the connection was terminated: the next beat reconnects
        logger.warning("leases of token tests %s not renewed: %s", test_ids, exc)
        _reconnect()


def _reconnect() -> None:
    """Drop a broken database connection (outside a transaction) so that the next query opens a new one."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def _run_chain(test: TokenTest, identity: ManagedIdentity | None) -> chain.ChainResult:
    if identity is None:
        return chain.ChainResult([], "no_identity")
    tenant, app = test.tenant, test.tenant.home_app
    return chain.run(app=app, identity=identity, tenant_id=str(tenant.tenant_id), tenant_cloud=tenant.cloud,
                     retrying=test.attempts > 1, reuse_home_proof=test.sweep_id is not None)


# A batch's chains run side by side on this process's threads: a chain spends nearly all its time waiting for
# Microsoft, and threads overlap those waits at a fraction of the cost of more worker processes. The threads never
# touch the database (the identity is read before, the outcomes are recorded after, on the task's own thread).
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:  # a forked child has none of its parent's threads
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _chain_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, settings.TOKEN_TEST_THREADS), thread_name_prefix="chain")
        return _pool


def _await_chains(futures: list[Future], renew) -> None:
    """Wait for every chain, renewing the leases of those still running every TOKEN_TEST_HEARTBEAT_SECONDS. A batch
    never abandons its chains: whatever interrupts the wait (the soft time limit), the chains finish first."""
    pending = set(futures)
    while pending:
        try:
            _, pending = wait(pending, timeout=settings.TOKEN_TEST_HEARTBEAT_SECONDS)
            if pending:
                renew(pending)
        except Exception as exc:  # noqa: BLE001
            logger.warning("a batch was interrupted (%s): its chains finish and are recorded", type(exc).__name__)


def _outage_of(test: TokenTest, outages: dict) -> Outage | None:
    clouds = {test.tenant.cloud, test.tenant.home_app.cloud}
    return next((outage for (cloud, _), outage in sorted(outages.items()) if cloud in clouds), None)


def _pair(test: TokenTest, endpoint: str) -> tuple[str, str]:
    """(cloud, endpoint) of a hop: the worker's identity and home tenant are in the app's cloud, the rest in the
    tenant's."""
    home = endpoint in ("imds", "home_token")
    return (test.tenant.home_app.cloud if home else test.tenant.cloud, endpoint)


def _observed(runs: list[tuple[TokenTest, chain.ChainResult]]) -> dict[tuple[str, str], list[int]]:
    """Per (cloud, endpoint): the answers seen on the wire and the tenants that failed transiently there."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for test, result in runs:
        for step in result.steps:
            if step.ok and step.http_status:
                counts[_pair(test, step.name)][0] += 1
        if result.transient:
            counts[_pair(test, _failed_endpoint(result))][1] += 1
    return counts


def token_tests_execute(*, test_ids: list[int], budget_seconds: float | None = None,
                        now=None) -> tuple[list[Execution], list[int]]:
    """Claim the due tests of `test_ids`, run their chains side by side (up to TOKEN_TEST_THREADS at once) while
    renewing their leases, then record every step and outcome in one transaction.

    Tests of a cloud whose endpoint is in an outage (circuit breaker open) are held: handed back with a delay, no
    attempt spent, while one of them probes. Tests not started within `budget_seconds` (the first always starts) are
    left queued and returned, for the caller to send on their own. A chain that met our own failure is handed back;
    if recording fails, what can be recorded is, and the rest is handed back. Returns the executions (a held or
    handed-back test has one with its delay; a test not claimable has none) and the tests left unstarted."""
    owner = _lease_owner()
    tests = _claim(test_ids, owner=owner, now=now)
    if not tests:
        return [], []
    outages = outages_open(now=now)
    held = {test.pk: outage for test in tests
            if (outage := _outage_of(test, outages)) and not probe_take(outage, now=now)}
    to_run = [test for test in tests if test.pk not in held]
    identities: dict[int, ManagedIdentity | None] = {}
    for test in to_run:
        app = test.tenant.home_app
        if app.pk not in identities:
            identities[app.pk] = worker_identity(app, max_age=IDENTITY_MAX_AGE if test.sweep_id else 0)

    deadline = time.monotonic() + budget_seconds if budget_seconds else None

    def run(index: int):
        if index and deadline is not None and time.monotonic() > deadline:
            return None
        try:
            return _run_chain(to_run[index], identities[to_run[index].tenant.home_app.pk])
        except Exception as exc:  # noqa: BLE001 - the chain's own failures are results; this is ours
            logger.warning("token test %s: the chain raised %s", to_run[index].pk, type(exc).__name__)
            return _Crashed(exc)

    futures = [_chain_pool().submit(run, i) for i in range(len(to_run))]
    index_of = {future: i for i, future in enumerate(futures)}
    _await_chains(futures, lambda pending: _renew([to_run[index_of[f]].pk for f in pending], owner=owner))
    results = [future.result() for future in futures]

    unstarted = [test.pk for test, result in zip(to_run, results, strict=True) if result is None]
    crashed = [test.pk for test, result in zip(to_run, results, strict=True) if _is_infrastructure(result)]
    runs = [(test, result) for test, result in zip(to_run, results, strict=True)
            if result is not None and not _is_infrastructure(result)]
    outages = breaker_observe(counts=_observed(runs), now=now) if runs else outages
    for test, result in runs:  # a transient failure during an outage is held too: it spends no attempt
        if result.transient and test.pk not in held and (outage := outages.get(
                _pair(test, _failed_endpoint(result))) or _outage_of(test, outages)):
            held[test.pk] = outage
    out_of_attempts = {_pair(test, _failed_endpoint(result)) for test, result in runs
                       if result.transient and test.attempts >= settings.TOKEN_TEST_MAX_ATTEMPTS}
    degraded = endpoints_degraded(out_of_attempts, now=now) if out_of_attempts else set()
    runs += [(test, None) for test in tests if test.pk in held and test not in to_run]
    executions = _record_or_hand_back(runs, owner=owner, held=held, degraded=degraded, now=now)
    _hand_back(unstarted, owner=owner)
    if crashed:
        delay = settings.TOKEN_TEST_RETRY_BASE_SECONDS
        executions += [Execution(pk, TokenTest.Status.QUEUED, retry_in=delay)
                       for pk in _hand_back(crashed, owner=owner, delay=delay)]
    return executions, unstarted


def _record_or_hand_back(runs, *, owner: str, held: dict, degraded: set = frozenset(), now=None) -> list[Execution]:
    """Record the runs in one transaction; should that fail (a database error, a bug), each on its own, and hand back
    those that still cannot be recorded (if even that fails, their leases expire and the reaper takes them)."""
    if not runs:
        return []
    try:
        with transaction.atomic():
            return _record(runs, owner=owner, held=held, degraded=degraded, now=now)
    except Exception as exc:  # noqa: BLE001
        logger.warning("a batch of %d token tests could not be recorded at once (%s): one by one", len(runs), exc)
        _reconnect()
    executions, unrecorded = [], []
    for run in runs:
        try:
            with transaction.atomic():
                executions += _record([run], owner=owner, held=held, degraded=degraded, now=now)
        except Exception as exc:  # noqa: BLE001
            logger.warning("token test %s could not be recorded (%s): handed back", run[0].pk, exc)
            _reconnect()
            unrecorded.append(run[0].pk)
    if unrecorded:
        delay = settings.TOKEN_TEST_RETRY_BASE_SECONDS
        executions += [Execution(pk, TokenTest.Status.QUEUED, retry_in=delay)
                       for pk in _hand_back(unrecorded, owner=owner, delay=delay)]
    return executions


def token_test_execute(*, test_id: int, now=None) -> Execution | None:
    """Claim a due test, run the chain, record its steps, then finish it or schedule a retry.

    Returns None when the test was not claimable (a duplicate delivery, a retry not yet due, or already finished).
    """
    executions, _ = token_tests_execute(test_ids=[test_id], now=now)
    return executions[0] if executions else None


def token_tests_execute_and_requeue(*, test_ids: list[int]) -> None:
    """What a task does with its tests (one, or a sweep's batch): run them, then send the retries (those due at the
    same time as one batch) and each test the time budget left unstarted, as a task of its own."""
    executions, unstarted = token_tests_execute(test_ids=test_ids, budget_seconds=settings.TOKEN_TEST_BATCH_SECONDS)
    retries = defaultdict(list)
    for execution in executions:
        if execution.retry_in is not None:
            retries[execution.retry_in].append(execution.test_id)
    for delay, ids in retries.items():
        _enqueue(ids, countdown=delay, batch=settings.SWEEP_BATCH_SIZE)
    _enqueue(unstarted)


def _record(runs: list[tuple[TokenTest, chain.ChainResult | None]], *, owner: str, held: dict,
            degraded: set = frozenset(), now=None) -> list[Execution]:
    """The steps of every run, and what follows from each (a retry, a hold, or the outcome); inside the caller's
    transaction, for the tests this execution still holds the lease of (another may have taken one over).

    A transient failure out of attempts is retried still while the outage window lasts when it was a throttle or its
    endpoint is failing for many tenants (`degraded`): neither is this tenant's doing."""
    mine = set(TokenTest.objects.select_for_update().filter(
        pk__in=[test.pk for test, _ in runs], status=TokenTest.Status.RUNNING, lease_owner=owner)
        .values_list("pk", flat=True))
    if len(mine) < len(runs):
        logger.warning("token tests %s: lease lost, results dropped", sorted({t.pk for t, _ in runs} - mine))
    runs = [(test, result) for test, result in runs if test.pk in mine]
    TokenTestStep.objects.bulk_create([
        TokenTestStep(test=test, attempt=test.attempts, name=s.name, started_at=s.started_at,
                      duration_ms=s.duration_ms, ok=s.ok, http_status=s.http_status,
                      error_code=s.error_code[:64], error=s.error[:64], message=s.message, trace_id=s.trace_id,
                      correlation_id=s.correlation_id, claims=s.claims, detail=s.detail)
        for test, result in runs if result is not None for s in result.steps
    ])
    now = now or timezone.now()
    executions, finishing = {}, []
    for test, result in runs:
        outage = held.get(test.pk)
        if outage is not None and outage.expired(now):
            finishing.append((test, "outage", outage.describe(now)))
        elif outage is not None:
            delay = settings.BREAKER_PROBE_SECONDS * random.uniform(1.0, 1.5)
            ids = _hand_back([test.pk], owner=owner, delay=delay, error={"held": outage.describe(now)})
            executions[test.pk] = Execution(test.pk, TokenTest.Status.QUEUED, retry_in=delay if ids else None)
        elif (result.code == "AADSTS70021" and test.attempts < settings.TOKEN_TEST_PROPAGATION_ATTEMPTS
                and fic_recently_created(test.tenant.home_app)):
            executions[test.pk] = _schedule_retry(test, settings.FIC_PROPAGATION_RETRY_SECONDS, owner=owner,
                                                  outcome="propagating")
        elif result.transient and (test.attempts < settings.TOKEN_TEST_MAX_ATTEMPTS or (
                (_throttled(result) or _pair(test, _failed_endpoint(result)) in degraded)
                and test.started_at > now - timedelta(minutes=settings.SWEEP_OUTAGE_MAX_MINUTES))):
            executions[test.pk] = _schedule_retry(test, _backoff(test.attempts, result.retry_after), owner=owner)
        else:
            finishing.append((test, "transient" if result.transient else result.code, result.raw_error))
    statuses = _finish(finishing, owner=owner)
    for test, _, _ in finishing:
        executions[test.pk] = Execution(test.pk, statuses.get(test.pk, TokenTest.Status.FAILED))
    return [executions[test.pk] for test, _ in runs]


def _schedule_retry(test: TokenTest, delay: float, *, owner: str, outcome: str = "") -> Execution:
    """Back to the queue until `delay` has passed — only if this execution still runs it (never reopens a test)."""
    retried = TokenTest.objects.filter(pk=test.pk, status=TokenTest.Status.RUNNING, lease_owner=owner).update(
        status=TokenTest.Status.QUEUED, not_before=timezone.now() + timedelta(seconds=delay), outcome=outcome,
        diagnosis_code="propagating" if outcome == "propagating" else "", lease_owner="", lease_expires_at=None)
    if not retried:
        logger.warning("token test %s: not running under our lease any more, no retry", test.pk)
        return Execution(test.pk, test.status)
    return Execution(test.pk, TokenTest.Status.QUEUED, retry_in=delay)


def token_test_finish(*, test: TokenTest, code: str, raw_error: dict | None = None) -> str | None:
    """Record the outcome, the tenant's health and the sweep's counts, and audit it — in one transaction.

    Returns the test's new status, or None when it was not running (someone else finished it)."""
    status = _finish([(test, code, raw_error)]).get(test.pk)
    if not transaction.get_connection().in_atomic_block:
        test.refresh_from_db()
    return status


def _finish(items: list[tuple[TokenTest, str, dict | None]], *, owner: str | None = None,
            expired_before=None) -> dict[int, str]:
    """Finish running tests: outcomes, tenants' health, sweeps' counts and the audit trail, in one transaction and a
    few statements for the whole batch (one per distinct outcome, not one per test). Only tests still running (under
    `owner`'s lease, or a lease expired before `expired_before`) are finished: another process may have finished or
    taken over one, and it is left as it is. Returns {test id: new status} for those finished."""
    if not items:
        return {}
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        running = TokenTest.objects.select_for_update().filter(
            pk__in=[test.pk for test, _, _ in items], status=TokenTest.Status.RUNNING)
        if owner is not None:
            running = running.filter(lease_owner=owner)
        if expired_before is not None:
            running = running.filter(Q(lease_expires_at__lt=expired_before) | Q(lease_expires_at=None))
        running = set(running.values_list("pk", flat=True))
        done = [(test, diagnose_code(code, raw_error), raw_error) for test, code, raw_error in items
                if test.pk in running]
        tests, tenants, sweeps = defaultdict(list), defaultdict(list), defaultdict(lambda: [0, 0])
        statuses = {}
        for test, diagnosis, raw_error in done:
            verified = diagnosis.outcome == TokenTest.Outcome.VERIFIED
            statuses[test.pk] = TokenTest.Status.SUCCEEDED if verified else TokenTest.Status.FAILED
            kept = not diagnosis.recognised or diagnosis.code == OUTAGE  # the raw error, or the outage's facts
            error = json.dumps((raw_error or {}) if kept else {}, sort_keys=True, default=str)
            tests[(statuses[test.pk], diagnosis.outcome, diagnosis.code, error)].append(test.pk)
            if diagnosis.code != OUTAGE:  # an outage of Microsoft's is not held against the tenant
                tenants[diagnosis.outcome].append(test.tenant_id)
            if test.sweep_id:
                sweeps[test.sweep_id][0 if verified else 1] += 1
        for (status, outcome, code, error), pks in tests.items():
            TokenTest.objects.filter(pk__in=pks).update(status=status, outcome=outcome, diagnosis_code=code,
                                                        finished_at=now, not_before=None, error=json.loads(error),
                                                        lease_owner="", lease_expires_at=None)
        for outcome, pks in tenants.items():
            tenants_tested.send(sender=TokenTest, tenant_pks=pks, outcome=outcome, at=now)
        # The trail records what changed: every test someone asked for, and a swept tenant only when its outcome
        # differs from the last one (a sweep of 1,000 unchanged tenants is one "sweep.finished" event, not 1,000).
        audit_record_many([
            {"action": "tokentest.finished", "actor": WORKER, "target_type": "tokentest", "target_id": str(test.pk),
             "tenant_id": str(test.tenant.tenant_id), "detail": {"outcome": diagnosis.outcome, "code": diagnosis.code,
                                                                  "attempts": test.attempts,
                                                                  "previous": test.tenant.last_outcome}}
            for test, diagnosis, _ in done if not test.sweep_id or test.tenant.last_outcome != diagnosis.outcome])
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


def token_tests_reap(*, now=None) -> dict:
    """Take back tests whose lease expired (their worker died): re-queued and sent again, or failed as "worker_lost"
    once out of attempts; and send again queued tests whose message is overdue (lost with the broker's data)."""
    now = now or timezone.now()
    sent_at = min(now, timezone.now())  # due from: what the resend window counts from (never in the future)
    with transaction.atomic():
        # A row without a lease was claimed before leases existed: judged by its start, once.
        lease = timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS)
        expired = dict(TokenTest.objects.select_for_update().filter(status=TokenTest.Status.RUNNING).filter(
            Q(lease_expires_at__lt=now) | Q(lease_expires_at=None, started_at__lt=now - lease))
            .values_list("pk", "attempts"))
        requeue = [pk for pk, attempts in expired.items() if attempts < settings.TOKEN_TEST_MAX_ATTEMPTS]
        TokenTest.objects.filter(pk__in=requeue).update(
            status=TokenTest.Status.QUEUED, not_before=sent_at, attempt_started_at=None, lease_owner="",
            lease_expires_at=None)
    out_of_attempts = list(TokenTest.objects.select_related("tenant").filter(
        pk__in=[pk for pk in expired if pk not in requeue]))
    failed = len(_finish([(test, "worker_lost", None) for test in out_of_attempts], expired_before=now))
    resend_after = timedelta(seconds=settings.TOKEN_TEST_RESEND_SECONDS)
    lost_queue = TokenTest.objects.filter(status=TokenTest.Status.QUEUED).filter(
        Q(not_before__lt=now - resend_after) | Q(not_before=None, queued_at__lt=now - resend_after))
    lost = list(lost_queue.exclude(pk__in=requeue).values_list("pk", flat=True)[:5000])
    if lost:  # due again from now: sent once per window, not on every run of the reaper
        TokenTest.objects.filter(pk__in=lost, status=TokenTest.Status.QUEUED).update(not_before=sent_at)
    # Sent in batches like a sweep's; the claim makes a duplicate harmless.
    _enqueue(requeue + lost, batch=settings.SWEEP_BATCH_SIZE)
    if requeue or failed or lost:
        audit_record(action="tokentest.reaped", actor=Actor.system("reaper"),
                     detail={"requeued": len(requeue), "failed": failed, "resent": len(lost)})
    return {"requeued": len(requeue), "failed": failed, "resent": len(lost)}


def sweep_start(*, tenant_pks: list[int], trigger: str, actor: Actor, started_by=None,
                jitter_seconds: float = 0.0) -> Sweep:
    """Fan out one token test per tenant the caller names, counted on a Sweep."""
    with transaction.atomic():
        tenants = list(tenant_pks)
        sweep = Sweep.objects.create(trigger=trigger, started_by=started_by, total=len(tenants),
                                     finished_at=timezone.now() if not tenants else None)
        test_trigger = TokenTest.Trigger.SWEEP if trigger == Sweep.Trigger.MANUAL else TokenTest.Trigger.SCHEDULE
        tests = TokenTest.objects.bulk_create(
            [TokenTest(tenant_id=pk, trigger=test_trigger, sweep=sweep, requested_by=started_by) for pk in tenants])
        ids = [t.pk for t in tests] if all(t.pk for t in tests) else list(
            sweep.tests.values_list("pk", flat=True))
        audit_record(action="sweep.started", actor=actor, target_type="sweep", target_id=str(sweep.pk),
                     detail={"trigger": trigger, "tenants": len(tenants)})
        _enqueue(ids, jitter=jitter_seconds, batch=settings.SWEEP_BATCH_SIZE, priority=SWEEP_PRIORITY)
    return sweep


def _create_audited(model, *, action: str, target_type: str, actor: Actor, shown: tuple, **fields):
    obj = model(**fields)
    obj.full_clean()
    obj.save()
    audit_record(action=action, actor=actor, target_type=target_type, target_id=str(obj.pk),
                 detail={name: str(getattr(obj, name)) for name in shown})
    return obj


def home_app_create(*, actor: Actor, **fields) -> HomeApp:
    return _create_audited(HomeApp, action="homeapp.created", target_type="homeapp", actor=actor,
                           shown=("client_id", "home_tenant_id", "cloud"), **fields)


def managed_identity_create(*, actor: Actor, **fields) -> ManagedIdentity:
    return _create_audited(ManagedIdentity, action="identity.created", target_type="identity", actor=actor,
                           shown=("client_id", "principal_id"), **fields)
