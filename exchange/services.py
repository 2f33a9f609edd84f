"""Writes of exchange: starting, executing, finishing and reaping token tests; sweeps; registering apps/identities."""
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from exchange import chain
from exchange.diagnosis import diagnose_code
from exchange.models import HomeApp, ManagedIdentity, Sweep, TokenTest, TokenTestStep
from exchange.selectors import fic_recently_created, worker_identity
from portal.services import Actor, audit_record

logger = logging.getLogger(__name__)
WORKER = Actor.system("worker")
IDENTITY_MAX_AGE = 60  # seconds a sweep's test may use this process's earlier read of the worker identity


def _enqueue(test_ids: list[int], *, jitter: float = 0.0) -> None:
    from exchange.tasks import token_test_run

    def send():
        for test_id in test_ids:
            countdown = random.uniform(0, jitter) if jitter else None
            token_test_run.apply_async(args=[test_id], countdown=countdown, queue=settings.TOKEN_TEST_QUEUE)

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


def token_test_execute(*, test_id: int) -> Execution | None:
    """Claim a queued test, run the chain, record its steps, then finish it or schedule a retry.

    Returns None when the test was not claimable (a duplicate delivery, or already finished).
    """
    now = timezone.now()
    claimed = TokenTest.objects.filter(pk=test_id, status=TokenTest.Status.QUEUED).update(
        status=TokenTest.Status.RUNNING, started_at=Coalesce(F("started_at"), now), attempts=F("attempts") + 1,
        not_before=None,
    )
    if not claimed:
        logger.info("token test %s not claimable (duplicate delivery or finished)", test_id)
        return None
    test = TokenTest.objects.select_related("tenant", "tenant__home_app").get(pk=test_id)
    tenant, app = test.tenant, test.tenant.home_app
    identity = worker_identity(app, max_age=IDENTITY_MAX_AGE if test.sweep_id else 0)
    if identity is None:
        result = chain.ChainResult([], "no_identity")
    else:
        result = chain.run(app=app, identity=identity, tenant_id=str(tenant.tenant_id), tenant_cloud=tenant.cloud,
                           retrying=test.attempts > 1, reuse_home_proof=test.sweep_id is not None)
    # The steps and what follows from them (a retry, or the outcome) are written in one transaction: one commit.
    with transaction.atomic():
        TokenTestStep.objects.bulk_create([
            TokenTestStep(test=test, attempt=test.attempts, name=s.name, started_at=s.started_at,
                          duration_ms=s.duration_ms, ok=s.ok, http_status=s.http_status,
                          error_code=s.error_code[:64], error=s.error[:64], message=s.message, trace_id=s.trace_id,
                          correlation_id=s.correlation_id, claims=s.claims, detail=s.detail)
            for s in result.steps
        ])
        code = result.code
        if code == "AADSTS70021" and fic_recently_created(app):
            if test.attempts < settings.TOKEN_TEST_PROPAGATION_ATTEMPTS:
                return _schedule_retry(test, settings.FIC_PROPAGATION_RETRY_SECONDS, outcome="propagating")
        if result.transient and test.attempts < settings.TOKEN_TEST_MAX_ATTEMPTS:
            return _schedule_retry(test, _backoff(test.attempts, result.retry_after))
        if result.transient:
            code = "transient"
        status = token_test_finish(test=test, code=code, raw_error=result.raw_error)
    return Execution(test.pk, status or TokenTest.Status.FAILED)


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
    diagnosis = diagnose_code(code, raw_error)
    now = timezone.now()
    verified = diagnosis.outcome == TokenTest.Outcome.VERIFIED
    status = TokenTest.Status.SUCCEEDED if verified else TokenTest.Status.FAILED
    with transaction.atomic(savepoint=False):
        updated = TokenTest.objects.filter(pk=test.pk, status=TokenTest.Status.RUNNING).update(
            status=status,
            outcome=diagnosis.outcome, diagnosis_code=diagnosis.code, finished_at=now, not_before=None,
            error={} if diagnosis.recognised else (raw_error or {}),
        )
        if not updated:
            return None
        tenant = test.tenant
        fields = {"last_tested_at": now, "last_outcome": diagnosis.outcome}
        if verified:
            fields.update(last_success_at=now, failing_since=None, consecutive_failures=0,
                          verified_at=Coalesce(F("verified_at"), now))
        else:
            fields.update(consecutive_failures=F("consecutive_failures") + 1,
                          failing_since=Coalesce(F("failing_since"), now))
        if diagnosis.outcome == TokenTest.Outcome.NOT_CONSENTED and tenant.offboarded_at:
            fields["removal_confirmed_at"] = Coalesce(F("removal_confirmed_at"), now)
        type(tenant).objects.filter(pk=tenant.pk).update(**fields)
        closed_sweep = None
        if test.sweep_id:
            # Count this test; in the common case (not the last one) that is one statement. The row lock makes the
            # `done` condition exact under concurrent workers (PostgreSQL re-checks it after waiting for the lock).
            counts = {"done": F("done") + 1, "succeeded": F("succeeded") + int(verified),
                      "failed": F("failed") + int(not verified)}
            sweeps = Sweep.objects.filter(pk=test.sweep_id)
            if not sweeps.filter(done__lt=F("total") - 1).update(**counts):
                sweeps.update(**counts, finished_at=Coalesce(F("finished_at"), now))
                closed_sweep = sweeps.filter(finished_at=now).values("total", "succeeded", "failed").first()
        # The trail records what changed: every test someone asked for, and a swept tenant only when its outcome
        # differs from the last one (a sweep of 1,000 unchanged tenants is one "sweep.finished" event, not 1,000).
        if not test.sweep_id or tenant.last_outcome != diagnosis.outcome:
            audit_record(action="tokentest.finished", actor=WORKER, target_type="tokentest", target_id=str(test.pk),
                         tenant_id=str(tenant.tenant_id),
                         detail={"outcome": diagnosis.outcome, "code": diagnosis.code, "attempts": test.attempts,
                                 "previous": tenant.last_outcome})
        if closed_sweep is not None:
            audit_record(action="sweep.finished", actor=WORKER, target_type="sweep", target_id=str(test.sweep_id),
                         detail=closed_sweep)
    if not transaction.get_connection().in_atomic_block:
        test.refresh_from_db()
    return status


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
        _enqueue(ids, jitter=jitter_seconds)
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
