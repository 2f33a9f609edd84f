"""Writes of exchange: starting, executing, finishing and reaping token tests; sweeps; registering apps/identities."""
import json
import logging
import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from exchange import chain
from exchange.diagnosis import diagnose_code
from exchange.models import HomeApp, ManagedIdentity, Sweep, TokenTest, TokenTestStep
from exchange.selectors import fic_recently_created, worker_identity
from portal.services import Actor, audit_record, audit_record_many

logger = logging.getLogger(__name__)
WORKER = Actor.system("worker")
IDENTITY_MAX_AGE = 60  # seconds a sweep's test may use this process's earlier read of the worker identity


def _enqueue(test_ids: list[int], *, jitter: float = 0.0, batch: int = 1, countdown: float | None = None) -> None:
    """Send the tests' tasks once the transaction commits: one task per test, or per `batch` tests (sweeps), after
    `countdown` seconds (a retry) or a random delay up to `jitter` (a scheduled sweep)."""
    from exchange.tasks import token_test_run, token_tests_run

    def send():
        for i in range(0, len(test_ids), batch):
            delay = random.uniform(0, jitter) if jitter else countdown
            chunk = test_ids[i:i + batch]
            task, args = (token_test_run, chunk) if len(chunk) == 1 else (token_tests_run, [chunk])
            task.apply_async(args=args, countdown=delay, queue=settings.TOKEN_TEST_QUEUE)

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


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Capped exponential backoff; never sooner than Retry-After (nor than MSAL's own 5 s replay window)."""
    delay = min(settings.TOKEN_TEST_RETRY_MAX_SECONDS, settings.TOKEN_TEST_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return max(delay, retry_after or 0.0)


def _claim(test_ids: list[int]) -> list[TokenTest]:
    """Queued → running, for those of `test_ids` still queued, in one transaction: a duplicate delivery (or a finished
    test) claims nothing. Returns the claimed tests with their tenant and home app."""
    with transaction.atomic():
        ids = list(TokenTest.objects.select_for_update().filter(pk__in=test_ids, status=TokenTest.Status.QUEUED)
                   .values_list("pk", flat=True))
        if ids:
            TokenTest.objects.filter(pk__in=ids).update(
                status=TokenTest.Status.RUNNING, started_at=Coalesce(F("started_at"), timezone.now()),
                attempts=F("attempts") + 1, not_before=None)
    if len(ids) < len(test_ids):
        logger.info("token tests %s not claimable (duplicate delivery or finished)", sorted(set(test_ids) - set(ids)))
    return list(TokenTest.objects.select_related("tenant", "tenant__home_app").filter(pk__in=ids).order_by("pk"))


def _release(test_ids: list[int]) -> None:
    """Claimed but never started: back to the queue as they were."""
    TokenTest.objects.filter(pk__in=test_ids, status=TokenTest.Status.RUNNING).update(
        status=TokenTest.Status.QUEUED, attempts=F("attempts") - 1,
        started_at=Case(When(attempts__lte=1, then=Value(None)), default=F("started_at")))


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


def token_tests_execute(*, test_ids: list[int], budget_seconds: float | None = None) -> tuple[list[Execution], list[int]]:
    """Claim the queued tests of `test_ids`, run their chains side by side (up to TOKEN_TEST_THREADS at once), then
    record every step and outcome in one transaction.

    Tests not started within `budget_seconds` (the first always starts) are left queued and returned, for the caller
    to send on their own. Returns the executions (a test not claimable has none) and the tests left unstarted."""
    deadline = time.monotonic() + budget_seconds if budget_seconds else None
    tests = _claim(test_ids)
    identities: dict[int, ManagedIdentity | None] = {}
    for test in tests:
        app = test.tenant.home_app
        if app.pk not in identities:
            identities[app.pk] = worker_identity(app, max_age=IDENTITY_MAX_AGE if test.sweep_id else 0)

    def run(index: int) -> chain.ChainResult | None:
        if index and deadline is not None and time.monotonic() > deadline:
            return None
        return _run_chain(tests[index], identities[tests[index].tenant.home_app.pk])

    indexes = range(len(tests))
    results = list(_chain_pool().map(run, indexes)) if len(tests) > 1 else [run(i) for i in indexes]
    runs = [(test, result) for test, result in zip(tests, results, strict=True) if result is not None]
    unstarted = [test.pk for test, result in zip(tests, results, strict=True) if result is None]
    _release(unstarted)
    if not runs:
        return [], unstarted
    with transaction.atomic():
        executions = _record(runs)
    return executions, unstarted


def token_test_execute(*, test_id: int) -> Execution | None:
    """Claim a queued test, run the chain, record its steps, then finish it or schedule a retry.

    Returns None when the test was not claimable (a duplicate delivery, or already finished).
    """
    executions, _ = token_tests_execute(test_ids=[test_id])
    return executions[0] if executions else None


def token_tests_execute_and_requeue(*, test_ids: list[int]) -> None:
    """What a task does with its tests (one, or a sweep's batch): run them, then send each retry, and each test the
    time budget left unstarted, as a task of its own."""
    executions, unstarted = token_tests_execute(test_ids=test_ids, budget_seconds=settings.TOKEN_TEST_BATCH_SECONDS)
    for execution in executions:
        if execution.retry_in is not None:
            _enqueue([execution.test_id], countdown=execution.retry_in)
    _enqueue(unstarted)


def _record(runs: list[tuple[TokenTest, chain.ChainResult]]) -> list[Execution]:
    """The steps of every run, and what follows from each (a retry, or the outcome); inside the caller's transaction."""
    TokenTestStep.objects.bulk_create([
        TokenTestStep(test=test, attempt=test.attempts, name=s.name, started_at=s.started_at,
                      duration_ms=s.duration_ms, ok=s.ok, http_status=s.http_status,
                      error_code=s.error_code[:64], error=s.error[:64], message=s.message, trace_id=s.trace_id,
                      correlation_id=s.correlation_id, claims=s.claims, detail=s.detail)
        for test, result in runs for s in result.steps
    ])
    executions, finishing = {}, []
    for test, result in runs:
        code = result.code
        if (code == "AADSTS70021" and test.attempts < settings.TOKEN_TEST_PROPAGATION_ATTEMPTS
                and fic_recently_created(test.tenant.home_app)):
            executions[test.pk] = _schedule_retry(test, settings.FIC_PROPAGATION_RETRY_SECONDS, outcome="propagating")
        elif result.transient and test.attempts < settings.TOKEN_TEST_MAX_ATTEMPTS:
            executions[test.pk] = _schedule_retry(test, _backoff(test.attempts, result.retry_after))
        else:
            finishing.append((test, "transient" if result.transient else code, result.raw_error))
    statuses = _finish(finishing)
    for test, _, _ in finishing:
        executions[test.pk] = Execution(test.pk, statuses.get(test.pk, TokenTest.Status.FAILED))
    return [executions[test.pk] for test, _ in runs]


def _schedule_retry(test: TokenTest, delay: float, *, outcome: str = "") -> Execution:
    test.status = TokenTest.Status.QUEUED
    test.not_before = timezone.now() + timedelta(seconds=delay)
    test.outcome = outcome
    test.diagnosis_code = "propagating" if outcome == "propagating" else ""
    test.save(update_fields=["status", "not_before", "outcome", "diagnosis_code"])
    return Execution(test.pk, test.status, retry_in=delay)


def token_test_finish(*, test: TokenTest, code: str, raw_error: dict | None = None) -> str | None:
    """Record the outcome, the tenant's health and the sweep's counts, and audit it — in one transaction.

    Returns the test's new status, or None when it was not running (someone else finished it)."""
    status = _finish([(test, code, raw_error)]).get(test.pk)
    if not transaction.get_connection().in_atomic_block:
        test.refresh_from_db()
    return status


def _finish(items: list[tuple[TokenTest, str, dict | None]]) -> dict[int, str]:
    """Finish running tests: outcomes, tenants' health, sweeps' counts and the audit trail, in one transaction and a
    few statements for the whole batch (one per distinct outcome, not one per test). Returns {test id: new status}
    for the tests that were still running (another process may have finished one: it is left as it is)."""
    if not items:
        return {}
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        running = set(TokenTest.objects.select_for_update().filter(
            pk__in=[test.pk for test, _, _ in items], status=TokenTest.Status.RUNNING).values_list("pk", flat=True))
        done = [(test, diagnose_code(code, raw_error), raw_error) for test, code, raw_error in items
                if test.pk in running]
        tests, tenants, sweeps = defaultdict(list), defaultdict(list), defaultdict(lambda: [0, 0])
        statuses = {}
        for test, diagnosis, raw_error in done:
            verified = diagnosis.outcome == TokenTest.Outcome.VERIFIED
            statuses[test.pk] = TokenTest.Status.SUCCEEDED if verified else TokenTest.Status.FAILED
            error = json.dumps({} if diagnosis.recognised else (raw_error or {}), sort_keys=True, default=str)
            tests[(statuses[test.pk], diagnosis.outcome, diagnosis.code, error)].append(test.pk)
            tenants[diagnosis.outcome].append(test.tenant_id)
            if test.sweep_id:
                sweeps[test.sweep_id][0 if verified else 1] += 1
        for (status, outcome, code, error), pks in tests.items():
            TokenTest.objects.filter(pk__in=pks).update(status=status, outcome=outcome, diagnosis_code=code,
                                                        finished_at=now, not_before=None, error=json.loads(error))
        for outcome, pks in tenants.items():
            _tenants_tested(pks, outcome, now)
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


def _tenants_tested(pks: list[int], outcome: str, now) -> None:
    """Tenant health, derived from the outcome: last success, consecutive failures, failing since."""
    tenants = TokenTest.tenant.field.related_model.objects.filter(pk__in=pks)
    fields = {"last_tested_at": now, "last_outcome": outcome}
    if outcome == TokenTest.Outcome.VERIFIED:
        fields.update(last_success_at=now, failing_since=None, consecutive_failures=0,
                      verified_at=Coalesce(F("verified_at"), now))
    else:
        fields.update(consecutive_failures=F("consecutive_failures") + 1,
                      failing_since=Coalesce(F("failing_since"), now))
    if outcome == TokenTest.Outcome.NOT_CONSENTED:  # an offboarded tenant's removal is now confirmed
        tenants.filter(offboarded_at__isnull=False).update(
            removal_confirmed_at=Coalesce(F("removal_confirmed_at"), now))
    tenants.update(**fields)


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
    """Finish or re-queue tests stuck in running (their worker died) or queued with no task left to run them."""
    now = now or timezone.now()
    stuck_after = timedelta(seconds=settings.TOKEN_TEST_STUCK_SECONDS)
    requeued, failed, resent = 0, 0, []
    for test in TokenTest.objects.filter(status=TokenTest.Status.RUNNING, started_at__lt=now - stuck_after):
        if test.attempts < settings.TOKEN_TEST_MAX_ATTEMPTS:
            if TokenTest.objects.filter(pk=test.pk, status=TokenTest.Status.RUNNING).update(
                    status=TokenTest.Status.QUEUED, not_before=None):
                requeued += 1
                resent.append(test.pk)
        else:
            token_test_finish(test=test, code="worker_lost")
            failed += 1
    lost_queue = TokenTest.objects.filter(status=TokenTest.Status.QUEUED).filter(
        Q(not_before__lt=now - stuck_after) | Q(not_before=None, queued_at__lt=now - stuck_after))
    lost = list(lost_queue.exclude(pk__in=resent).values_list("pk", flat=True)[:1000])
    # A queued test whose message was lost is simply sent again: the claim makes a duplicate harmless.
    _enqueue(resent + lost)
    if requeued or failed or lost:
        audit_record(action="tokentest.reaped", actor=Actor.system("reaper"),
                     detail={"requeued": requeued, "failed": failed, "resent": len(lost)})
    return {"requeued": requeued, "failed": failed, "resent": len(lost)}


def active_tenants():
    from onboarding.models import CustomerTenant

    # Tenants worth testing: not offboarded, and consent has at least been received (or a test ran before).
    return CustomerTenant.objects.filter(offboarded_at=None).filter(
        Q(consent_received_at__isnull=False) | Q(verified_at__isnull=False) | Q(last_tested_at__isnull=False))


def sweep_start(*, trigger: str, actor: Actor, started_by=None, jitter_seconds: float = 0.0) -> Sweep:
    """Fan out one token test per active tenant, counted on a Sweep."""
    with transaction.atomic():
        tenants = list(active_tenants().values_list("pk", flat=True))
        sweep = Sweep.objects.create(trigger=trigger, started_by=started_by, total=len(tenants),
                                     finished_at=timezone.now() if not tenants else None)
        test_trigger = TokenTest.Trigger.SWEEP if trigger == Sweep.Trigger.MANUAL else TokenTest.Trigger.SCHEDULE
        tests = TokenTest.objects.bulk_create(
            [TokenTest(tenant_id=pk, trigger=test_trigger, sweep=sweep, requested_by=started_by) for pk in tenants])
        ids = [t.pk for t in tests] if all(t.pk for t in tests) else list(
            sweep.tests.values_list("pk", flat=True))
        audit_record(action="sweep.started", actor=actor, target_type="sweep", target_id=str(sweep.pk),
                     detail={"trigger": trigger, "tenants": len(tenants)})
        _enqueue(ids, jitter=jitter_seconds, batch=settings.SWEEP_BATCH_SIZE)
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
