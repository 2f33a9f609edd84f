"""Token tests on a real Celery worker process and the configured broker (filesystem, or Redis in CI's 2nd pass):
a full run, a duplicate delivery that does nothing, and a worker killed with SIGKILL mid-run."""
import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from emulator import world as demo
from exchange.models import TokenTest
from exchange.services import token_test_start, token_tests_reap
from exchange.tasks import token_test_run
from portal.services import Actor

pytestmark = pytest.mark.real_worker


@pytest.fixture
def worker_on_emulator(start_worker, portal_on_emulator, settings):
    env = {"ENTRA_BASE_URL": portal_on_emulator.emulator.base_url, "ENTRA_CA_BUNDLE": portal_on_emulator.emulator.ca_path,
           "IMDS_URL": portal_on_emulator.emulator.imds_url}

    def start(queue=None):
        queue, process = start_worker(queue, **env)
        settings.TOKEN_TEST_QUEUE = queue
        return queue, process

    return start


def _wait(test, condition, process=None, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        test.refresh_from_db()
        if condition(test):
            return test
        if process is not None and process.poll() is not None:
            pytest.fail(f"worker exited: {process.stdout.read()}")
        time.sleep(0.1)
    pytest.fail(f"token test still {test.status} after {seconds} s")


def test_duplicate_delivery_runs_the_chain_once(worker_on_emulator, make_tenant, portal_on_emulator):
    queue, process = worker_on_emulator()
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    token_test_run.apply_async(args=[test.pk], queue=queue)  # the broker delivers the same test twice
    _wait(test, lambda t: t.finished, process)
    time.sleep(1)  # give the duplicate time to arrive and be refused
    test.refresh_from_db()
    assert (test.status, test.outcome, test.attempts) == ("succeeded", "verified", 1)
    assert test.steps.count() == 5  # imds, home_token, tenant_token, arm_probe, access_check


def test_a_run_killed_with_sigkill_is_taken_back_within_15_s_with_default_settings(
        worker_on_emulator, make_tenant, portal_on_emulator, settings):
    """Finding 6: the dead worker stops renewing its lease; once it has expired (at most TOKEN_TEST_LEASE_SECONDS
    after the kill) the reaper, running every REAPER_INTERVAL_SECONDS, takes the test back — within 15 s."""
    portal_on_emulator.control.faults(arm={"latency_ms": 4000})
    queue, process = worker_on_emulator()
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    _wait(test, lambda t: t.status == TokenTest.Status.RUNNING, process)
    time.sleep(0.5)  # inside the slow ARM call
    os.kill(process.pid, signal.SIGKILL)
    killed_at = timezone.now()
    process.wait(timeout=10)
    test.refresh_from_db()
    assert test.status == "running" and test.lease_owner  # nobody will finish it...
    lease = timedelta(seconds=settings.TOKEN_TEST_LEASE_SECONDS)
    assert test.lease_expires_at <= killed_at + lease  # ...and nobody renews its lease
    assert settings.TOKEN_TEST_LEASE_SECONDS + settings.REAPER_INTERVAL_SECONDS <= 15  # the defaults meet the target
    portal_on_emulator.control.faults(arm={"latency_ms": 0})
    assert token_tests_reap(now=test.lease_expires_at - timedelta(seconds=1))["requeued"] == 0  # still leased
    assert token_tests_reap(now=test.lease_expires_at + timedelta(milliseconds=1))["requeued"] == 1
    _, second = worker_on_emulator(queue)
    _wait(test, lambda t: t.finished, second)
    assert (test.status, test.outcome, test.attempts) == ("succeeded", "verified", 2)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite connections are per task by design (CONN_MAX_AGE 0)")
def test_the_worker_keeps_its_database_connection_between_tasks(worker_on_emulator, make_tenant, portal_on_emulator):
    """Celery's Django fixup would close the connection around every task: a new PostgreSQL backend per token test."""

    def backends():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            return set(cursor.fetchall())

    others = backends()  # e.g. a live server's thread from another test
    queue, process = worker_on_emulator()
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    first = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    _wait(first, lambda t: t.finished, process)
    workers = backends() - others
    assert len(workers) == 1  # the worker's connection outlived its task
    second = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    _wait(second, lambda t: t.finished, process)
    assert backends() - others == workers  # and served the next one
    assert second.outcome == "verified"


def test_a_sweep_runs_in_batches_on_the_real_worker(worker_on_emulator, make_tenant, portal_on_emulator, settings):
    from exchange.models import Sweep
    from onboarding.services import sweep_all_start

    settings.SWEEP_BATCH_SIZE = 2  # three tenants: a batch of two and a test on its own
    queue, process = worker_on_emulator()
    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND):
        make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app)
    sweep = sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.system("test"))
    deadline = time.monotonic() + 60
    while sweep.finished_at is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
        sweep.refresh_from_db()
    assert (sweep.done, sweep.succeeded, sweep.failed) == (3, 1, 2) and sweep.finished_at is not None
    assert set(sweep.tests.values_list("outcome", flat=True)) == {"verified", "no_role", "not_consented"}
