"""A task enqueued by the web process runs in a separate worker process, on the configured broker."""
import os
import time
import uuid

import pytest

from portal.models import AuditEvent
from portal.tasks import heartbeat


@pytest.fixture
def worker(start_worker):
    return start_worker()


@pytest.mark.real_worker
def test_task_runs_in_the_separate_worker_process(worker):
    queue, process = worker
    nonce = uuid.uuid4().hex
    heartbeat.apply_async(args=[nonce], queue=queue)
    deadline = time.monotonic() + 60
    event = None
    while time.monotonic() < deadline and process.poll() is None:
        event = AuditEvent.objects.filter(action="worker.heartbeat", detail__nonce=nonce).first()
        if event:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    assert event is not None, "the worker did not consume the task within 60 s"
    assert event.detail["pid"] != os.getpid()
