"""Fixtures of exchange's tests: running a token test for a tenant, as a task would."""
import pytest

from exchange.services import token_test_start
from portal.services import Actor


def run_test(tenant, django_capture_on_commit_callbacks):
    """Queue a manual token test for `tenant` and run it (its task, on commit); the test as recorded."""
    with django_capture_on_commit_callbacks(execute=True):
        test = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    test.refresh_from_db()
    return test


@pytest.fixture
def run_for(portal_on_emulator, make_tenant, django_capture_on_commit_callbacks):
    """run_for(tenant_id, **fields): a tenant of the demo home app, tested once."""
    def run(tenant_id, **fields):
        tenant = make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app, **fields)
        return run_test(tenant, django_capture_on_commit_callbacks)

    return run
