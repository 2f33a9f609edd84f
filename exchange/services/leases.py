"""Leases on running token tests: who runs an attempt, claiming due tests, handing them back, the heartbeat."""
import logging
import os
import socket
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from exchange.models import TokenTest

logger = logging.getLogger(__name__)

# A retry's message is sent after its countdown, computed after not_before: it never arrives early from this host.
# The slack covers clocks of different hosts; a duplicate arriving sooner than this leaves the test to its retry.
CLAIM_EARLY = timedelta(seconds=1)


def lease_owner() -> str:
    """Who runs an attempt: this process and this execution of a batch (a lease is never shared)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_until(now):
    return now + timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS)


def _due(now) -> Q:
    """Queued and not waiting for a retry, or running under a lease that expired (taken over) with attempts left."""
    queued = Q(status=TokenTest.Status.QUEUED) & (Q(not_before=None) | Q(not_before__lte=now + CLAIM_EARLY))
    orphaned = Q(status=TokenTest.Status.RUNNING, lease_expires_at__lt=now,
                 attempts__lt=settings.TOKEN_TEST_MAX_ATTEMPTS)
    return queued | orphaned


def _take(test_ids: list[int], *, owner: str, now) -> dict[int, str]:
    """Lease the due tests of `test_ids` to `owner` in one transaction; {pk: status before}. A connection terminated
    while idle is found broken only by its next query: reconnect once."""
    for tries_left in (1, 0):
        try:
            with transaction.atomic():
                found = dict(TokenTest.objects.select_for_update().filter(_due(now), pk__in=test_ids)
                             .values_list("pk", "status"))
                if found:
                    TokenTest.objects.filter(pk__in=found).update(
                        status=TokenTest.Status.RUNNING, started_at=Coalesce(F("started_at"), now),
                        attempt_started_at=now, lease_owner=owner, lease_expires_at=lease_until(now),
                        attempts=F("attempts") + 1, not_before=None, error={})
            return found
        except DatabaseError as exc:
            if not tries_left or connection.in_atomic_block:
                raise
            logger.warning("claim failed (%s): reconnecting once", exc)
            connection.close()
    return {}


def claim(test_ids: list[int], *, owner: str, now=None) -> list[TokenTest]:
    """Take the tests of `test_ids` that are due, each with this execution's lease. A duplicate delivery, a test
    waiting for its retry, a live attempt or a finished test is left as it is."""
    found = _take(test_ids, owner=owner, now=now or timezone.now())
    taken = sorted(pk for pk, status in found.items() if status == TokenTest.Status.RUNNING)
    if taken:
        logger.warning("token tests %s taken over: their lease expired (worker lost)", taken)
    if len(found) < len(test_ids):
        logger.info("token tests %s not claimable (duplicate delivery, waiting for a retry, running or finished)",
                    sorted(set(test_ids) - set(found)))
    return list(TokenTest.objects.select_related("tenant", "tenant__home_app").filter(pk__in=found).order_by("pk"))


def hand_back(test_ids: list[int], *, owner: str, delay: float = 0.0, error: dict | None = None) -> list[int]:
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


def renew(test_ids: list[int], *, owner: str) -> None:
    """The heartbeat: this execution's leases extended while its chains run."""
    try:
        TokenTest.objects.filter(pk__in=test_ids, status=TokenTest.Status.RUNNING, lease_owner=owner).update(
            lease_expires_at=lease_until(timezone.now()))
    except DatabaseError as exc:  # e.g. the connection was terminated: the next beat reconnects
        logger.warning("leases of token tests %s not renewed: %s", test_ids, exc)
        reconnect()


def reconnect() -> None:
    """Drop a broken database connection (outside a transaction) so that the next query opens a new one."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
