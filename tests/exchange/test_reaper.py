"""Token tests stuck in running (worker killed) or queued (message lost) are re-queued or finished by the reaper;
duplicate deliveries of a test do nothing."""
from datetime import timedelta

import pytest
from django.utils import timezone

from exchange import services
from exchange.models import Sweep, TokenTest
from portal.models import AuditEvent


@pytest.fixture
def sent(monkeypatch):
    """The ids the reaper sends back to the queue (the broker itself is exercised in test_worker_tasks.py)."""
    ids = []
    monkeypatch.setattr(services, "_enqueue", lambda test_ids, jitter=0.0: ids.extend(test_ids))
    return ids


def _stuck(tenant, *, attempts, minutes=30, status=TokenTest.Status.RUNNING, sweep=None):
    then = timezone.now() - timedelta(minutes=minutes)
    return TokenTest.objects.create(tenant=tenant, trigger="manual", status=status, attempts=attempts,
                                    queued_at=then, started_at=then if status == "running" else None, sweep=sweep)


@pytest.mark.django_db
def test_running_test_of_a_dead_worker_is_requeued(make_tenant, sent):
    test = _stuck(make_tenant(), attempts=1)
    assert services.token_tests_reap() == {"requeued": 1, "failed": 0, "resent": 0}
    test.refresh_from_db()
    assert test.status == TokenTest.Status.QUEUED and sent == [test.pk]
    assert AuditEvent.objects.get(action="tokentest.reaped").detail["requeued"] == 1


@pytest.mark.django_db
def test_running_test_out_of_attempts_is_failed_with_a_diagnosis(make_tenant, sent, settings):
    tenant = make_tenant()
    sweep = Sweep.objects.create(trigger="manual", total=1)
    test = _stuck(tenant, attempts=settings.TOKEN_TEST_MAX_ATTEMPTS, sweep=sweep)
    services.token_tests_reap()
    test.refresh_from_db()
    tenant.refresh_from_db()
    sweep.refresh_from_db()
    assert (test.status, test.outcome, test.diagnosis_code) == ("failed", "transient", "worker_lost")
    assert tenant.consecutive_failures == 1 and tenant.last_outcome == "transient"
    assert (sweep.done, sweep.failed) == (1, 1) and sweep.finished_at is not None
    assert AuditEvent.objects.get(action="sweep.finished").detail == {"total": 1, "succeeded": 0, "failed": 1}
    assert sent == []


@pytest.mark.django_db
def test_recent_running_and_scheduled_retries_are_left_alone(make_tenant, sent):
    tenant = make_tenant()
    _stuck(tenant, attempts=1, minutes=1)
    TokenTest.objects.create(tenant=tenant, trigger="manual", status="queued", attempts=1,
                             not_before=timezone.now() + timedelta(seconds=60))
    assert services.token_tests_reap() == {"requeued": 0, "failed": 0, "resent": 0}
    assert sent == [] and not AuditEvent.objects.filter(action="tokentest.reaped").exists()


@pytest.mark.django_db
def test_queued_test_whose_message_was_lost_is_sent_again(make_tenant, sent):
    test = _stuck(make_tenant(), attempts=0, status=TokenTest.Status.QUEUED)
    assert services.token_tests_reap()["resent"] == 1
    assert sent == [test.pk]


@pytest.mark.django_db
def test_duplicate_delivery_does_nothing(make_tenant):
    test = TokenTest.objects.create(tenant=make_tenant(), trigger="manual", status=TokenTest.Status.RUNNING,
                                    attempts=1, started_at=timezone.now())
    assert services.token_test_execute(test_id=test.pk) is None
    test.refresh_from_db()
    assert test.attempts == 1 and test.status == "running" and not test.steps.exists()
    finished = TokenTest.objects.create(tenant=test.tenant, trigger="manual", status=TokenTest.Status.SUCCEEDED)
    assert services.token_test_execute(test_id=finished.pk) is None
