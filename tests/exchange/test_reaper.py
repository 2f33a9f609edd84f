"""The reaper takes back tests whose lease expired (their worker died) and re-sends queued tests whose message was
lost; it judges liveness by the lease, never by when the test first started. Duplicate deliveries do nothing."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchange import services
from exchange.models import Sweep, TokenTest
from exchange.services import reaper
from portal.models import AuditEvent


@pytest.fixture
def sent(monkeypatch):
    """The ids the reaper sends back to the queue (the broker itself is exercised in test_worker_tasks.py)."""
    ids = []
    monkeypatch.setattr(reaper, "enqueue", lambda test_ids, **kwargs: ids.extend(test_ids))
    return ids


def _running(tenant, *, attempts, lease_left, started_minutes_ago=30, sweep=None):
    now = timezone.now()
    then = now - timedelta(minutes=started_minutes_ago)
    return TokenTest.objects.create(tenant=tenant, trigger="manual", status=TokenTest.Status.RUNNING,
                                    attempts=attempts, queued_at=then, started_at=then, sweep=sweep,
                                    attempt_started_at=now - timedelta(seconds=5), lease_owner="worker-a:1:x",
                                    lease_expires_at=now + timedelta(seconds=lease_left))


@pytest.mark.django_db
def test_a_running_test_whose_lease_expired_is_requeued(make_tenant, sent):
    test = _running(make_tenant(), attempts=1, lease_left=-1)
    assert services.token_tests_reap() == {"requeued": 1, "failed": 0, "resent": 0}
    test.refresh_from_db()
    assert (test.status, test.lease_owner, test.lease_expires_at) == ("queued", "", None) and sent == [test.pk]
    assert AuditEvent.objects.get(action="tokentest.reaped").detail["requeued"] == 1


@pytest.mark.django_db
def test_a_live_second_attempt_of_a_test_first_started_long_ago_is_left_alone(make_tenant, sent):
    """Finding 4: the first attempt started 30 minutes ago, but the attempt now running renews its lease."""
    test = _running(make_tenant(), attempts=2, lease_left=5, started_minutes_ago=30)
    assert services.token_tests_reap() == {"requeued": 0, "failed": 0, "resent": 0}
    test.refresh_from_db()
    assert test.status == "running" and test.lease_owner == "worker-a:1:x" and sent == []


@pytest.mark.django_db
def test_the_reaper_judges_by_the_time_it_is_given(make_tenant, sent, settings):
    test = _running(make_tenant(), attempts=1, lease_left=settings.TOKEN_TEST_LEASE_SECONDS)
    assert services.token_tests_reap()["requeued"] == 0
    later = test.lease_expires_at + timedelta(seconds=1)
    assert services.token_tests_reap(now=later)["requeued"] == 1 and sent == [test.pk]


@pytest.mark.django_db
def test_running_test_out_of_attempts_is_failed_with_a_diagnosis(make_tenant, sent, settings):
    tenant = make_tenant()
    sweep = Sweep.objects.create(trigger="manual", total=1)
    test = _running(tenant, attempts=settings.TOKEN_TEST_MAX_ATTEMPTS, lease_left=-1, sweep=sweep)
    services.token_tests_reap()
    test.refresh_from_db()
    tenant.refresh_from_db()
    sweep.refresh_from_db()
    assert (test.status, test.outcome, test.diagnosis_code) == ("failed", "transient", "worker_lost")
    assert (tenant.consecutive_failures, tenant.last_outcome, tenant.last_check_outcome) == (0, "", "transient")
    assert (sweep.done, sweep.failed) == (1, 1) and sweep.finished_at is not None
    assert AuditEvent.objects.get(action="sweep.finished").detail == {"total": 1, "succeeded": 0, "failed": 1}
    assert sent == []


@pytest.mark.django_db
def test_scheduled_retries_are_left_alone(make_tenant, sent):
    TokenTest.objects.create(tenant=make_tenant(), trigger="manual", status="queued", attempts=1,
                             not_before=timezone.now() + timedelta(seconds=60))
    assert services.token_tests_reap() == {"requeued": 0, "failed": 0, "resent": 0}
    assert sent == [] and not AuditEvent.objects.filter(action="tokentest.reaped").exists()


@pytest.mark.django_db
def test_queued_test_whose_message_was_lost_is_sent_again_once_per_window(make_tenant, sent, settings):
    then = timezone.now() - timedelta(seconds=settings.TOKEN_TEST_RESEND_SECONDS + 5)
    test = TokenTest.objects.create(tenant=make_tenant(), trigger="manual", queued_at=then)
    assert services.token_tests_reap()["resent"] == 1
    assert services.token_tests_reap()["resent"] == 0  # due again from now: not re-sent on every run
    assert sent == [test.pk]


@pytest.mark.django_db
def test_duplicate_delivery_does_nothing(make_tenant):
    test = _running(make_tenant(), attempts=1, lease_left=5)
    assert services.token_test_execute(test_id=test.pk) is None
    test.refresh_from_db()
    assert test.attempts == 1 and test.status == "running" and not test.steps.exists()
    finished = TokenTest.objects.create(tenant=test.tenant, trigger="manual", status=TokenTest.Status.SUCCEEDED)
    assert services.token_test_execute(test_id=finished.pk) is None


@pytest.mark.django_db
def test_a_test_left_running_before_leases_existed_is_taken_back(make_tenant, sent):
    then = timezone.now() - timedelta(minutes=30)
    test = TokenTest.objects.create(tenant=make_tenant(), trigger="manual", status=TokenTest.Status.RUNNING,
                                    attempts=1, started_at=then)
    assert services.token_tests_reap()["requeued"] == 1 and sent == [test.pk]
