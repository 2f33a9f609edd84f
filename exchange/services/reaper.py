"""The reaper: token tests whose worker died, or whose message the broker lost."""
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exchange.models import TokenTest
from exchange.services.estop_guard import estop_current
from exchange.services.outcomes import finish
from exchange.services.queue import enqueue
from portal.services import Actor, audit_record

WORKER_LOST = "worker_lost"
RESEND_MAX = 5000  # queued tests sent again per run of the reaper


def _expired(now, sent_at) -> tuple[dict[int, int], list[int]]:
    """Running tests whose lease expired, {pk: attempts}; those with attempts left are re-queued (returned)."""
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
    return expired, requeue


def _lost(now, sent_at, *, requeued: list[int]) -> list[int]:
    """Queued tests whose message is overdue (lost with the broker's data): due again from now, so that they are
    sent once per window, not on every run of the reaper."""
    resend_after = timedelta(seconds=settings.TOKEN_TEST_RESEND_SECONDS)
    lost_queue = TokenTest.objects.filter(status=TokenTest.Status.QUEUED).filter(
        Q(not_before__lt=now - resend_after) | Q(not_before=None, queued_at__lt=now - resend_after))
    lost = list(lost_queue.exclude(pk__in=requeued).values_list("pk", flat=True)[:RESEND_MAX])
    if lost:
        TokenTest.objects.filter(pk__in=lost, status=TokenTest.Status.QUEUED).update(not_before=sent_at)
    return lost


def token_tests_reap(*, now=None) -> dict:
    """Take back tests whose lease expired (their worker died): re-queued and sent again, or failed as "worker_lost"
    once out of attempts; and send again queued tests whose message is overdue (lost with the broker's data)."""
    now = now or timezone.now()
    sent_at = min(now, timezone.now())  # due from: what the resend window counts from (never in the future)
    expired, requeue = _expired(now, sent_at)
    out_of_attempts = list(TokenTest.objects.select_related("tenant").filter(
        pk__in=[pk for pk in expired if pk not in requeue]))
    failed = len(finish([(test, WORKER_LOST, None) for test in out_of_attempts], expired_before=now))
    stop = estop_current()  # tests held by the emergency stop are not lost: its restart sends them again
    lost = [] if stop is not None and stop.tests_paused else _lost(now, sent_at, requeued=requeue)
    # Sent in batches like a sweep's; the claim makes a duplicate harmless.
    enqueue(requeue + lost, batch=settings.SWEEP_BATCH_SIZE)
    counts = {"requeued": len(requeue), "failed": failed, "resent": len(lost)}
    if any(counts.values()):
        audit_record(action="tokentest.reaped", actor=Actor.system("reaper"), detail=counts)
    return counts
