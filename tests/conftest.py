"""Shared fixtures: staff users per role, clients signed in as them, and the emulator (tests/fixtures/emulator.py)."""
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from exchange import chain
from exchange.demo import demo_environment, demo_seed
from exchange.models import HomeApp
from onboarding.models import Customer, CustomerTenant
from portal.roles import ROLES
from portal.services import staff_user_create

pytest_plugins = ["tests.fixtures.emulator"]

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty shared cache (rate-limit counters, discovery documents): Redis keeps them."""
    cache.clear()


TEST_AUDIT_KEY = "test-audit-key-0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def _audit_key_and_checkpoints(settings, tmp_path):
    """The audit chain under a key of the tests' own, and a checkpoint store per test (checkpoints outlive a test
    database: an earlier test's would name events this one never had)."""
    settings.AUDIT_KEY = TEST_AUDIT_KEY
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"


@pytest.fixture
def make_staff(db):
    def make(role: str, username: str | None = None):
        return staff_user_create(username=username or f"{role}-user", role=role, password=PASSWORD)

    return make


@pytest.fixture
def staff_clients(make_staff):
    """A signed-in client per role, plus an anonymous one under the key None."""
    clients = {None: Client()}
    for role in ROLES:
        client = Client()
        client.force_login(make_staff(role))
        clients[role] = client
    return clients


@pytest.fixture
def operator_client(make_staff):
    client = Client()
    client.force_login(make_staff("operator"))
    return client


@pytest.fixture
def admin_client_portal(make_staff):
    client = Client()
    client.force_login(make_staff("admin"))
    return client


def worker_env(**extra) -> dict:
    """The environment of a worker process that shares this test's database and broker."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1", "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_FS_DIR": str(settings.CELERY_FS_DIR), "AUDIT_KEY": settings.AUDIT_KEY,
            "AUDIT_CHECKPOINT_DIR": str(settings.AUDIT_CHECKPOINT_DIR), **extra}


@pytest.fixture
def start_worker(transactional_db):
    """start_worker(queue=None, **env) -> (queue, process): a real `celery worker` consuming a queue of its own."""
    started = []

    def start(queue=None, **extra):
        queue = queue or f"test-{uuid.uuid4().hex[:8]}"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool", "solo", "-l", "WARNING",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=Path(__file__).resolve().parents[1], env=worker_env(**extra), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        started.append(process)
        return queue, process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(autouse=True)
def celery_eager(request, settings):
    """Tasks run inline (after commit) unless a test is about the real worker and broker (marker `real_worker`)."""
    from portal.celery import app

    if request.node.get_closest_marker("real_worker"):
        yield
        return
    app.conf.task_always_eager = True
    # An eager task runs at once, whatever its countdown: its retry must be due at once too (the claim honours
    # not_before). Tests about backoff set their own base.
    settings.TOKEN_TEST_RETRY_BASE_SECONDS = 0
    # Propagating: a task that crashes fails the test (retries are new messages, not a raised `Retry`).
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


# --- domain objects -------------------------------------------------------------------------------------------
HOME_TENANT = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def make_home_app(db):
    def make(**fields):
        fields = {"name": "Keyless access", "client_id": "22222222-2222-4222-8222-222222222222",
                  "home_tenant_id": HOME_TENANT, **fields}
        return HomeApp.objects.create(**fields)

    return make


@pytest.fixture
def make_tenant(db, make_home_app):
    """A customer tenant (consent received by default), creating its customer and home app as needed."""
    counter = {"n": 0}

    def make(*, customer=None, home_app=None, **fields):
        counter["n"] += 1
        n = counter["n"]
        customer = customer or Customer.objects.create(name=f"Customer {n}")
        home_app = home_app or HomeApp.objects.first() or make_home_app()
        fields = {"tenant_id": f"aaaaaaaa-0000-4000-8000-{n:012d}", "primary_domain": f"customer{n}.example",
                  "consent_received_at": timezone.now(), **fields}
        return CustomerTenant.objects.create(customer=customer, home_app=home_app, **fields)

    return make


@pytest.fixture
def portal_on_emulator(emulator, settings, db):
    """The portal's clouds and IMDS pointed at the emulator, with its demo home app and managed identity registered."""
    env = demo_environment(emulator.info)
    settings.ENTRA_BASE_URL, settings.ENTRA_CA_BUNDLE, settings.IMDS_URL = (
        env["ENTRA_BASE_URL"], env["ENTRA_CA_BUNDLE"], env["IMDS_URL"])
    chain.reset_clients()
    app, identity = demo_seed(emulator.info)
    yield SimpleNamespace(emulator=emulator, control=emulator.control, app=app, identity=identity,
                          info=emulator.info)
    chain.reset_clients()


def pytest_sessionstart(session):
    """Messages left in the filesystem broker by an earlier, interrupted run are not this run's."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        for sub in ("queue", "processed", "control"):
            shutil.rmtree(settings.CELERY_FS_DIR / sub, ignore_errors=True)
            (settings.CELERY_FS_DIR / sub).mkdir(parents=True, exist_ok=True)
