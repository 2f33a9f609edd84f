"""Batches that finish what they started (issue 11, finding 3): a chain that meets our own failure is handed back,
never recorded against its tenant; a batch that cannot record records what it can and hands the rest back; an
interrupted batch still waits for its chains."""
import pytest
from django.db import DatabaseError

from emulator import world as demo
from exchange import chain, faults, pool, services
from exchange.models import Sweep, TokenTest
from exchange.services import tokentests
from exchange.signals import tenants_tested


@pytest.fixture
def batch(portal_on_emulator, make_tenant):
    sweep = Sweep.objects.create(trigger="manual", total=3)
    tenants = [make_tenant(tenant_id=t, home_app=portal_on_emulator.app)
               for t in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]
    return [TokenTest.objects.create(tenant=t, trigger="sweep", sweep=sweep).pk for t in tenants]


def _tests(ids):
    return {t.tenant.tenant_id.hex[:8]: t for t in TokenTest.objects.filter(pk__in=ids).select_related("tenant")}


def test_a_chain_that_raises_is_handed_back_not_blamed_on_the_tenant(batch, monkeypatch, settings):
    """A Redis error escaping MSAL used to crash the whole batch: the finished chains were thrown away."""
    run = tokentests._run_chain

    def cache_down_for_tailspin(test, identity, grants):
        if str(test.tenant.tenant_id) == demo.TAILSPIN:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return run(test, identity, grants)

    monkeypatch.setattr(tokentests, "_run_chain", cache_down_for_tailspin)
    executions, unstarted = services.token_tests_execute(test_ids=batch)
    by_id = {e.test_id: e for e in executions}
    fabrikam, tailspin, northwind = (TokenTest.objects.select_related("tenant").get(pk=pk) for pk in batch)
    assert (fabrikam.status, northwind.status) == ("succeeded", "failed")  # what finished is recorded
    assert (tailspin.status, tailspin.attempts, tailspin.outcome) == ("queued", 0, "")  # ours: handed back
    assert by_id[tailspin.pk].retry_in == settings.TOKEN_TEST_RETRY_BASE_SECONDS and unstarted == []
    tailspin.tenant.refresh_from_db()
    assert (tailspin.tenant.last_outcome, tailspin.tenant.consecutive_failures) == ("", 0)
    assert not tailspin.steps.exists()


def test_a_result_classified_as_infrastructure_is_handed_back(batch, monkeypatch):
    run = tokentests._run_chain

    def infrastructure_for_northwind(test, identity, grants):
        result = run(test, identity, grants)
        if str(test.tenant.tenant_id) == demo.NORTHWIND:
            # what the chain says when our cache or database failed it
            result.failure = faults.classify(faults.ARM, exc=RuntimeError("the shared cache is down"))
        return result

    monkeypatch.setattr(tokentests, "_run_chain", infrastructure_for_northwind)
    services.token_tests_execute(test_ids=batch)
    northwind = TokenTest.objects.select_related("tenant").get(pk=batch[2])
    assert (northwind.status, northwind.attempts) == ("queued", 0)
    assert northwind.tenant.last_outcome == "" and Sweep.objects.get().done == 2


def test_a_batch_that_cannot_record_one_test_records_the_others_and_hands_it_back(batch, monkeypatch, settings):
    northwind = TokenTest.objects.get(pk=batch[2]).tenant_id

    def database_error_on_northwind(sender, *, tenant_pks, outcome, at, **kwargs):
        if northwind in tenant_pks:
            raise DatabaseError("terminating connection due to administrator command")

    tenants_tested.connect(database_error_on_northwind, sender=TokenTest)
    try:
        executions, _ = services.token_tests_execute(test_ids=batch)
    finally:
        tenants_tested.disconnect(database_error_on_northwind, sender=TokenTest)
    statuses = dict(TokenTest.objects.filter(pk__in=batch).values_list("pk", "status"))
    assert statuses == {batch[0]: "succeeded", batch[1]: "failed", batch[2]: "queued"}
    assert {e.test_id: e.retry_in for e in executions}[batch[2]] == settings.TOKEN_TEST_RETRY_BASE_SECONDS
    assert TokenTest.objects.get(pk=batch[2]).attempts == 0 and not TokenTest.objects.get(pk=batch[2]).steps.exists()
    sweep = Sweep.objects.get()
    assert (sweep.done, sweep.finished_at) == (2, None)  # the handed-back test is still to come


def test_an_interrupted_batch_still_waits_for_its_chains_and_records_them(batch, monkeypatch, portal_on_emulator):
    from billiard.exceptions import SoftTimeLimitExceeded

    portal_on_emulator.control.faults(arm={"latency_ms": 500})
    real_wait, calls = pool.wait, []

    def soft_time_limit_once(pending, timeout):
        calls.append(len(pending))
        if len(calls) == 1:
            raise SoftTimeLimitExceeded()  # Celery raises it in the task's thread, here while it waits
        return real_wait(pending, timeout=timeout)

    monkeypatch.setattr(pool, "wait", soft_time_limit_once)
    executions, _ = services.token_tests_execute(test_ids=batch)
    assert len(calls) >= 2 and sorted(e.status for e in executions) == ["failed", "failed", "succeeded"]
    assert not chain._home_locks or all(not lock.locked() for lock in chain._home_locks.values())
