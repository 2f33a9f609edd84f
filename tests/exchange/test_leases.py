"""Leases of running token tests (issue 11, findings 4 and 5): a running attempt carries its own start and a lease
renewed while its chain runs; an expired lease may be taken over; a state change is made only by the lease's owner;
the claim honours not_before, so a duplicate message leaves a test waiting for its retry."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from emulator import world as demo
from exchange import chain, services
from exchange.models import Sweep, TokenTest
from exchange.services import leases, outcomes


@pytest.fixture
def tenant(portal_on_emulator, make_tenant):
    return make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)


def test_a_claim_gives_the_attempt_its_own_start_and_a_lease(tenant, settings):
    first_start = timezone.now() - timedelta(hours=1)
    test = TokenTest.objects.create(tenant=tenant, trigger="manual", attempts=1, started_at=first_start)
    now = timezone.now()
    [claimed] = leases.claim([test.pk], owner="me", now=now)
    assert (claimed.status, claimed.attempts, claimed.lease_owner) == ("running", 2, "me")
    assert claimed.started_at == first_start and claimed.attempt_started_at == now
    assert claimed.lease_expires_at == now + timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS)


def test_the_lease_is_renewed_while_the_chain_runs(portal_on_emulator, tenant, settings):
    settings.TOKEN_TEST_HEARTBEAT_SECONDS = 0.05
    portal_on_emulator.control.faults(arm={"latency_ms": 1000})
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    with CaptureQueriesContext(connection) as queries:
        execution = services.token_test_execute(test_id=test.pk)
    renewals = [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "lease_expires_at" in q["sql"]
                and '"status" = ' not in q["sql"].split("SET")[1].split("WHERE")[0]]
    assert execution.status == "succeeded" and len(renewals) >= 2  # the heartbeat beat while ARM was slow
    test.refresh_from_db()
    assert (test.lease_owner, test.lease_expires_at) == ("", None)  # a finished test holds no lease


def test_a_live_lease_is_not_taken_over_but_an_expired_one_is(tenant, settings):
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    t0 = timezone.now()
    leases.claim([test.pk], owner="dead-worker", now=t0)
    assert services.token_test_execute(test_id=test.pk, now=t0 + timedelta(seconds=1)) is None  # a duplicate
    later = t0 + timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS + 1)
    execution = services.token_test_execute(test_id=test.pk, now=later)  # a re-delivered message
    test.refresh_from_db()
    assert execution.status == "succeeded" and (test.status, test.outcome, test.attempts) == ("succeeded",
                                                                                              "verified", 2)


def test_a_late_result_of_a_lost_lease_reopens_nothing(portal_on_emulator, tenant, settings):
    """Finding 4: the attempt taken over finishes the test; the old owner's transient result comes in late. It must
    not schedule a retry of the finished test (which counted it twice on its sweep: done=2, total=1)."""
    sweep = Sweep.objects.create(trigger="manual", total=1)
    test = TokenTest.objects.create(tenant=tenant, trigger="sweep", sweep=sweep)
    t0 = timezone.now()
    [old] = leases.claim([test.pk], owner="slow-worker", now=t0)
    later = t0 + timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS + 1)
    assert services.token_test_execute(test_id=test.pk, now=later).status == "succeeded"
    late = chain.ChainResult([], "transient", transient=True, retry_after=1.0)
    assert outcomes.record_or_hand_back([(old, late)], owner="slow-worker", held={}) == []
    test.refresh_from_db()
    sweep.refresh_from_db()
    assert (test.status, test.outcome, test.not_before) == ("succeeded", "verified", None)
    assert (sweep.done, sweep.total, sweep.succeeded) == (1, 1, 1)
    # and the retry itself is conditional on the lease too
    assert outcomes.schedule_retry(old, 5.0, owner="slow-worker").retry_in is None
    test.refresh_from_db()
    assert test.status == "succeeded"


def test_a_duplicate_message_leaves_a_test_waiting_for_its_retry(portal_on_emulator, tenant, settings,
                                                                  django_capture_on_commit_callbacks):
    """Finding 5: a retry is due at not_before; an earlier (duplicate or re-sent) message claims nothing."""
    settings.TOKEN_TEST_RETRY_BASE_SECONDS = 30
    portal_on_emulator.control.faults(token={"fail_next": 1, "fail_status": 503, "retry_after": 0})
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    assert services.token_test_execute(test_id=test.pk).retry_in == 30
    test.refresh_from_db()
    due = test.not_before
    portal_on_emulator.control.reset_requests()
    for _ in range(3):  # re-sent and duplicate messages during the backoff
        with django_capture_on_commit_callbacks(execute=True):
            services.token_tests_execute_and_requeue(test_ids=[test.pk])
    test.refresh_from_db()
    assert (test.status, test.attempts, test.not_before) == ("queued", 1, due)
    assert portal_on_emulator.control.requests()["by_endpoint"].get("token", 0) == 0  # nothing went out
    assert services.token_test_execute(test_id=test.pk, now=due).status == "succeeded"  # the retry itself runs
    test.refresh_from_db()
    assert test.attempts == 2
