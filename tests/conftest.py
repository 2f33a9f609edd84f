"""Shared fixtures: staff users per role, clients signed in as them, and the emulator (tests/fixtures/emulator.py)."""
import pytest
from django.test import Client

from portal.roles import ROLES
from portal.services import staff_user_create

# pytest_plugins: added back when tests/fixtures/emulator.py lands

PASSWORD = "correct-horse-battery-staple-42"


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


@pytest.fixture(autouse=True)
def celery_eager(request, settings):
    """Tasks run inline (after commit) unless a test is about the real worker and broker (marker `real_worker`)."""
    from portal.celery import app

    if request.node.get_closest_marker("real_worker"):
        yield
        return
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
