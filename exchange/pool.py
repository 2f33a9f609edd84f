"""The chain thread pool: a batch's chains run side by side on this process's threads.

A chain spends nearly all its time waiting for Microsoft, and threads overlap those waits at a fraction of the cost of
more worker processes. The threads never touch the database (the identity is read before, the outcomes are recorded
after, on the task's own thread). A forked child (a Celery prefork worker) starts with no pool: it has none of its
parent's threads.
"""
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings

logger = logging.getLogger(__name__)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def chain_pool() -> ThreadPoolExecutor:
    """This process's pool, TOKEN_TEST_THREADS wide, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, settings.TOKEN_TEST_THREADS), thread_name_prefix="chain")
        return _pool


def await_chains(futures: list[Future], renew: Callable[[set[Future]], None]) -> None:
    """Wait for every chain, calling `renew` with those still running every TOKEN_TEST_HEARTBEAT_SECONDS. A batch
    never abandons its chains: whatever interrupts the wait (the soft time limit), the chains finish first."""
    pending = set(futures)
    while pending:
        try:
            _, pending = wait(pending, timeout=settings.TOKEN_TEST_HEARTBEAT_SECONDS)
            if pending:
                renew(pending)
        except Exception as exc:  # noqa: BLE001
            logger.warning("a batch was interrupted (%s): its chains finish and are recorded", type(exc).__name__)
