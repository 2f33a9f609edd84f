"""Sending token tests' tasks to the workers, once the transaction that queued them commits."""
import logging
import random

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)
LOGGED_IDS = 20  # how many test ids a log line names


def enqueue(test_ids: list[int], *, jitter: float = 0.0, batch: int = 1, countdown: float | None = None,
            priority: int | None = None) -> None:
    """Send the tests' tasks once the transaction commits: one task per test, or per `batch` tests (sweeps), after
    `countdown` seconds (a retry) or a random delay up to `jitter` (a scheduled sweep), at Redis `priority`.

    A broker that cannot take them is logged, not raised: the tests stay queued and the reaper sends them again."""
    from exchange.tasks import token_test_run, token_tests_run  # exchange's own tasks call these services

    def send():
        try:
            for i in range(0, len(test_ids), batch):
                delay = random.uniform(0, jitter) if jitter else countdown
                chunk = test_ids[i:i + batch]
                task, args = (token_test_run, chunk) if len(chunk) == 1 else (token_tests_run, [chunk])
                task.apply_async(args=args, countdown=delay, queue=settings.TOKEN_TEST_QUEUE, priority=priority)
        except OperationalError as exc:  # kombu's: the broker is unreachable (its own retries ran out)
            logger.warning("token tests %s not sent (%s): the reaper sends them again", test_ids[:LOGGED_IDS], exc)

    transaction.on_commit(send)
