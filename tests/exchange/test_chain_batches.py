"""Batches of token tests: recorded as single tests would be, run side by side, retried and budgeted on their own."""
import threading
import uuid
from datetime import timedelta

from django.db.backends.signals import connection_created

from emulator import world as demo
from exchange.models import TokenTest


def _batch(portal_on_emulator, make_tenant, *tenant_ids, sweep=None):
    tests = [TokenTest.objects.create(tenant=make_tenant(tenant_id=t, home_app=portal_on_emulator.app),
                                      trigger="sweep", sweep=sweep) for t in tenant_ids]
    return [t.pk for t in tests]


def test_a_batch_records_each_test_as_a_single_test_would(portal_on_emulator, make_tenant):
    from exchange.services import token_tests_execute

    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)
    executions, unstarted = token_tests_execute(test_ids=ids)
    assert unstarted == [] and [e.test_id for e in executions] == ids
    by_id = {t.pk: t for t in TokenTest.objects.filter(pk__in=ids)}
    outcomes = [(by_id[i].status, by_id[i].outcome, by_id[i].attempts) for i in ids]
    assert outcomes == [("succeeded", "verified", 1), ("failed", "no_role", 1), ("failed", "not_consented", 1)]
    assert [e.status for e in executions] == ["succeeded", "failed", "failed"]
    assert [by_id[i].steps.count() for i in ids] == [5, 5, 3]  # NORTHWIND stops at the customer-tenant token
    tenants = {t.tenant.tenant_id: t.tenant for t in by_id.values()}
    for tenant in tenants.values():
        tenant.refresh_from_db()
    assert tenants[uuid.UUID(demo.FABRIKAM)].last_success_at is not None
    assert tenants[uuid.UUID(demo.TAILSPIN)].consecutive_failures == 1
    assert tenants[uuid.UUID(demo.NORTHWIND)].last_outcome == "not_consented"
    # Delivered again, the batch claims nothing and writes nothing.
    assert token_tests_execute(test_ids=ids) == ([], [])
    assert sum(by_id[i].steps.count() for i in ids) == 13


def test_a_batch_runs_its_chains_side_by_side_with_one_imds_call_and_one_home_proof(portal_on_emulator, make_tenant):
    from exchange.models import Sweep, TokenTestStep
    from exchange.services import token_tests_execute

    portal_on_emulator.control.faults(token={"latency_ms": 200}, arm={"latency_ms": 200})
    portal_on_emulator.control.reset_requests()
    sweep = Sweep.objects.create(trigger="manual", total=3)
    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND, sweep=sweep)
    opened_by = []
    record = lambda **kwargs: opened_by.append(threading.current_thread().name)  # noqa: E731
    connection_created.connect(record)
    try:
        executions, _ = token_tests_execute(test_ids=ids)
    finally:
        connection_created.disconnect(record)
    assert not [name for name in opened_by if name.startswith("chain")]  # the chains' threads never touch the database
    assert [e.status for e in executions] == ["succeeded", "failed", "failed"]
    # Every customer exchange began before any of them ended: the three waited for Entra at the same time.
    spans = [(s.started_at, s.started_at + timedelta(milliseconds=s.duration_ms))
             for s in TokenTestStep.objects.filter(test_id__in=ids, name="tenant_token")]
    assert len(spans) == 3 and max(start for start, _ in spans) < min(end for _, end in spans)
    # Yet the process asked IMDS once and proved the FIC in its home tenant once, for all three.
    counts = portal_on_emulator.control.requests()["by_endpoint"]
    assert (counts["imds"], counts["token"]) == (1, 4)
    homes = TokenTestStep.objects.filter(test_id__in=ids, name="home_token")
    assert sorted(h.detail.get("source", "wire") for h in homes) == ["proven earlier by this worker"] * 2 + ["wire"]
    sweep.refresh_from_db()
    assert (sweep.done, sweep.succeeded, sweep.failed) == (3, 1, 2) and sweep.finished_at


def test_a_transient_failure_in_a_batch_is_retried_as_a_task_of_its_own(portal_on_emulator, make_tenant,
                                                                         django_capture_on_commit_callbacks, settings):
    from exchange.services import token_tests_execute_and_requeue

    settings.TOKEN_TEST_RETRY_BASE_SECONDS = 0
    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN)
    portal_on_emulator.control.faults(arm={"fail_next": 1, "fail_status": 503, "retry_after": 0})
    with django_capture_on_commit_callbacks(execute=True):
        token_tests_execute_and_requeue(test_ids=ids)
    first, second = TokenTest.objects.filter(pk__in=ids).order_by("pk")
    assert (first.status, first.outcome, second.status, second.outcome) == ("succeeded", "verified", "failed", "no_role")
    # The chains run side by side, so either may have met the 503: that one ran twice, with a retried step.
    assert sorted([first.attempts, second.attempts]) == [1, 2]
    retried = first if first.attempts == 2 else second
    assert list(retried.steps.filter(name="arm_probe").order_by("attempt").values_list("attempt", "http_status")) == [
        (1, 503), (2, 200)]


def test_a_batch_past_its_time_budget_sends_the_rest_on_their_own(portal_on_emulator, make_tenant,
                                                                  django_capture_on_commit_callbacks, settings):
    from exchange.services import token_tests_execute, token_tests_execute_and_requeue

    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)
    executions, unstarted = token_tests_execute(test_ids=ids, budget_seconds=1e-9)
    assert [e.test_id for e in executions] == ids[:1] and unstarted == ids[1:]  # one always runs
    left = TokenTest.objects.filter(pk__in=unstarted)
    assert set(left.values_list("status", "attempts", "started_at")) == {("queued", 0, None)}  # as they were
    settings.TOKEN_TEST_BATCH_SECONDS = 1e-9
    with django_capture_on_commit_callbacks(execute=True):
        token_tests_execute_and_requeue(test_ids=ids)  # the first is done: the next runs, the last goes out alone
    statuses = dict(TokenTest.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ids[0]: "succeeded", ids[1]: "failed", ids[2]: "failed"}
