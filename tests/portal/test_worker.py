"""A task enqueued by the web process runs in a separate worker process, on the configured broker."""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from portal.models import AuditEvent
from portal.tasks import heartbeat

ROOT = Path(__file__).resolve().parents[2]


def worker_env() -> dict:
    """The environment of a worker process that shares this test's database and broker."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1", "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_FS_DIR": str(settings.CELERY_FS_DIR)}


@pytest.fixture
def worker(transactional_db):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool", "solo", "-l", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield queue, process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


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
