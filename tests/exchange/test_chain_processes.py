"""What a worker process keeps between chains: the demo seed, tenants' discovery shared by every process, a bounded
number of MSAL clients, and a thread pool of its own after a fork."""


from emulator import world as demo
from exchange import chain
from exchange.demo import demo_seed
from exchange.models import HomeApp, ManagedIdentity
from tests.exchange.conftest import run_test


def test_demo_seed_is_idempotent(portal_on_emulator):
    app, identity = demo_seed(portal_on_emulator.info)
    assert (app.pk, identity.pk) == (portal_on_emulator.app.pk, portal_on_emulator.identity.pk)
    seeded = portal_on_emulator.info["demo"]
    assert (str(app.client_id), str(app.home_tenant_id)) == (seeded["app"]["app_id"], seeded["home_tenant"]["id"])
    assert HomeApp.objects.count() == ManagedIdentity.objects.count() == 1
    assert str(identity.principal_id) == demo.MI_PRINCIPAL_ID and str(identity.client_id) == demo.MI_CLIENT_ID


def test_a_tenants_discovery_is_fetched_once_for_all_worker_processes(portal_on_emulator, make_tenant,
                                                                      django_capture_on_commit_callbacks):
    from django.core.cache import cache

    cache.clear()
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    assert run_test(tenant, django_capture_on_commit_callbacks).outcome == "verified"
    chain.reset_clients()  # as a second worker process would start: no MSAL client, no MSAL cache
    portal_on_emulator.control.reset_requests()
    assert run_test(tenant, django_capture_on_commit_callbacks).outcome == "verified"
    counts = portal_on_emulator.control.requests()["by_endpoint"]
    assert "discovery" not in counts and counts["token"] == 2


def test_a_worker_keeps_at_most_entra_clients_max_msal_clients(portal_on_emulator, make_tenant, settings,
                                                                django_capture_on_commit_callbacks):
    from exchange import entra

    settings.ENTRA_CLIENTS_MAX = 2
    tenants = [make_tenant(tenant_id=t, home_app=portal_on_emulator.app)
               for t in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]
    for tenant in tenants:
        run_test(tenant, django_capture_on_commit_callbacks)
    # The home tenant's client and the last customer's are kept; the least recently used ones were dropped...
    assert entra.client_tenants() == {demo.HOME, demo.NORTHWIND}
    # ...and a dropped tenant is simply served by a new client.
    assert run_test(tenants[0], django_capture_on_commit_callbacks).outcome == "verified"
    assert entra.client_tenants() == {demo.HOME, demo.FABRIKAM}


def test_a_forked_worker_process_starts_its_own_chain_threads():
    """Celery's prefork pool forks: a child must not inherit a thread pool whose threads stayed in the parent."""
    import os

    from exchange.pool import chain_pool

    parent_pool = chain_pool()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, run nothing else of pytest's
        os._exit(0 if chain_pool() is not parent_pool and chain_pool() is chain_pool() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert chain_pool() is parent_pool
