"""Issue 11, the chain's side, against the emulator over real HTTPS: a throttle MSAL replays, a throttled discovery
document, a shared cache that fails, and HTTP pools as large as the threads that share them. No healthy tenant is
ever recorded as failing for any of these."""
import logging
import socket
import subprocess
import time

import pytest

from bench.sweep import bench_world
from emulator import world as demo
from exchange import chain, faults
from exchange.models import Sweep, TokenTest, TokenTestStep
from exchange.services import token_test_execute, token_tests_execute


@pytest.fixture
def healthy(portal_on_emulator, make_emulator, settings, make_tenant):
    """An emulator with `n` consented tenants holding a role; returns (emulator, [tenant ids])."""

    def make(n: int):
        emu = make_emulator(bench_world(n))
        settings.ENTRA_BASE_URL, settings.IMDS_URL = emu.base_url, emu.imds_url
        chain.reset_clients()
        ids = [t["id"] for t in emu.world.data["tenants"] if t["id"].startswith("b0000000")]
        for tenant_id in ids:
            make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app)
        return emu, ids

    return make


def _sweep_of(tenant_ids: list[str]) -> list[int]:
    from onboarding.models import CustomerTenant

    sweep = Sweep.objects.create(trigger="manual", total=len(tenant_ids))
    tests = [TokenTest.objects.create(tenant=CustomerTenant.objects.get(tenant_id=t), trigger="sweep", sweep=sweep)
             for t in tenant_ids]
    return [t.pk for t in tests]


def _due_now(test_ids: list[int]) -> None:
    """The retries' wait is over (the tests assert behaviour, never wall-clock time)."""
    TokenTest.objects.filter(pk__in=test_ids, status="queued").update(not_before=None)


def test_one_429_on_the_home_proof_fails_no_healthy_tenant(healthy, portal_on_emulator):
    """Finding 1: the home proof's client is shared by every chain of the batch; MSAL replays its 429 to the others,
    with no HTTP response behind the replay. Every one of them is transient, with the server's Retry-After."""
    emu, tenant_ids = healthy(6)
    ids = _sweep_of(tenant_ids)
    emu.control.fail_next("token", 1, status=429, retry_after=30, tenant=demo.HOME)
    executions, _ = token_tests_execute(test_ids=ids)
    assert [e.status for e in executions] == ["queued"] * 6  # none failed: each waits for its retry
    assert all(0 < e.retry_in <= 30 for e in executions)
    homes = list(TokenTestStep.objects.filter(test_id__in=ids, name="home_token"))
    assert {(s.ok, s.error_code, s.http_status) for s in homes} == {(False, "transient", 429)}
    assert sum(bool(s.detail.get("replayed")) for s in homes) == 5  # one went on the wire, MSAL replayed it to five
    assert emu.control.requests()["by_endpoint"]["token"] == 1
    _due_now(ids)
    executions, _ = token_tests_execute(test_ids=ids)
    assert [e.status for e in executions] == ["succeeded"] * 6
    assert set(TokenTest.objects.filter(pk__in=ids).values_list("outcome", "attempts")) == {("verified", 2)}


def test_a_replayed_throttle_says_where_and_how_long(portal_on_emulator):
    """What "lease" reads of a result: the kind, the endpoint and the wait, also for an answer MSAL replayed."""
    portal_on_emulator.control.fail_next("token", 1, status=429, retry_after=40, tenant=demo.HOME)
    run = {"app": portal_on_emulator.app, "identity": portal_on_emulator.identity, "tenant_cloud": "global"}
    on_wire = chain.run(tenant_id=demo.FABRIKAM, **run)
    replayed = chain.run(tenant_id=demo.TAILSPIN, **run)
    for result in (on_wire, replayed):
        assert (result.kind, result.endpoint, result.code, result.transient) == (
            faults.TRANSIENT, faults.HOME_TOKEN, "transient", True)
        assert result.steps[-1].http_status == 429 and not result.infrastructure
    assert on_wire.retry_after == 40 and 0 < replayed.retry_after <= 40
    assert replayed.steps[-1].detail.get("replayed") and not on_wire.steps[-1].detail.get("replayed")
    assert chain.run(tenant_id=demo.FABRIKAM, retrying=True, **run).code == "verified"  # our retry: a fresh client


@pytest.mark.parametrize("status", [429, 503])
def test_a_throttled_discovery_document_is_transient_and_asked_once(portal_on_emulator, make_tenant, status):
    """Finding 2: MSAL raises ValueError for any 4xx of the tenant's discovery (MsalServiceError for a 5xx); the
    chain classifies by the status on the wire, and does not ask discovery again to guess."""
    control = portal_on_emulator.control
    control.fail_next("discovery", 1, status=status, retry_after=12, tenant=demo.FABRIKAM)
    control.reset_requests()
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    execution = token_test_execute(test_id=test.pk)
    assert execution.status == "queued" and execution.retry_in >= 12
    step = TokenTestStep.objects.get(test=test, name="tenant_token")
    assert (step.ok, step.error_code, step.http_status) == (False, "transient", status)
    assert control.requests()["by_tenant"][demo.FABRIKAM] == 1  # the throttled GET only: no second look
    _due_now([test.pk])
    assert token_test_execute(test_id=test.pk).status == "succeeded"


def test_a_tenant_discovery_fault_names_its_endpoint(portal_on_emulator):
    portal_on_emulator.control.fail_next("discovery", 1, status=429, retry_after=9, tenant=demo.FABRIKAM)
    result = chain.run(app=portal_on_emulator.app, identity=portal_on_emulator.identity, tenant_id=demo.FABRIKAM,
                       tenant_cloud="global")
    assert (result.kind, result.endpoint, result.retry_after) == (faults.TRANSIENT, faults.TENANT_DISCOVERY, 9)


def test_an_unknown_tenant_is_still_not_found_without_asking_twice(portal_on_emulator):
    portal_on_emulator.control.reset_requests()
    unknown = "0badc0de-0000-4000-8000-000000000000"
    result = chain.run(app=portal_on_emulator.app, identity=portal_on_emulator.identity, tenant_id=unknown,
                       tenant_cloud="global")
    assert (result.kind, result.endpoint, result.code) == (faults.PERMANENT, faults.TENANT_DISCOVERY, "AADSTS90002")
    assert result.steps[-1].http_status == 400 and result.steps[-1].error == "invalid_tenant"
    assert portal_on_emulator.control.requests()["by_tenant"][unknown] == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _redis_cache(settings, port: int) -> None:
    settings.CACHES = {"default": {"BACKEND": "portal.cache.PortalRedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0"}}


def test_a_shared_cache_nobody_answers_degrades_to_reading_discovery(portal_on_emulator, make_tenant, settings,
                                                                      caplog):
    """Finding 3: the discovery cache's Redis refuses connections while MSAL builds the clients; the chain reads the
    documents from Entra itself, logs the outage once, and verifies the tenant."""
    _redis_cache(settings, _free_port())
    chain.reset_clients()
    caplog.set_level(logging.WARNING, logger="exchange.http")
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    assert token_test_execute(test_id=test.pk).status == "succeeded"
    test.refresh_from_db()
    assert test.outcome == "verified"
    outages = [r for r in caplog.records if r.name == "exchange.http" and "shared cache failed" in r.message]
    assert len(outages) == 1  # once, although both the home and the customer documents missed the cache


def test_a_redis_killed_under_a_warm_cache_does_not_fail_the_tenant(portal_on_emulator, make_tenant, settings,
                                                                   tmp_path):
    """Finding 3, the other way round: the cache worked, then its Redis died; the next chains still run."""
    port = _free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.02)
        _redis_cache(settings, port)
        run = {"app": portal_on_emulator.app, "identity": portal_on_emulator.identity, "tenant_cloud": "global"}
        assert chain.run(tenant_id=demo.FABRIKAM, **run).code == "verified"  # the documents are now in Redis
    finally:
        server.terminate()
        server.wait(timeout=10)
    chain.reset_clients()  # new MSAL clients: they read the documents again, through the dead cache
    result = chain.run(tenant_id=demo.FABRIKAM, **run)
    assert (result.code, result.kind) == ("verified", "")


def test_a_failure_of_our_own_is_infrastructure_never_the_tenants(portal_on_emulator, make_tenant):
    """What cannot degrade is classified INFRASTRUCTURE, never raised out of the chain nor made permanent: here a
    tenant row naming a cloud this code does not know."""
    result = chain.run(app=portal_on_emulator.app, identity=portal_on_emulator.identity, tenant_id=demo.FABRIKAM,
                       tenant_cloud="no-such-cloud")
    assert (result.kind, result.code, result.infrastructure) == (faults.INFRASTRUCTURE, "infrastructure", True)
    assert result.steps[0].ok and result.steps[-1].error_code == "infrastructure"
    assert "KeyError" in result.steps[-1].message and result.steps[-1].detail == {"infrastructure": True}


def test_http_pools_hold_as_many_connections_as_the_threads_using_them(healthy, portal_on_emulator, settings,
                                                                       caplog):
    """Finding 8: MSAL clients are built on one thread and used by all (one per tenant, kept for the worker's life):
    their HTTP pool must take as many connections as threads use it at once, or urllib3 discards them."""
    emu, tenant_ids = healthy(10)
    assert settings.TOKEN_TEST_THREADS >= 10
    run = {"app": portal_on_emulator.app, "identity": portal_on_emulator.identity, "tenant_cloud": "global"}
    for tenant_id in tenant_ids:  # warm: every client is built here, on the test's own thread
        assert chain.run(tenant_id=tenant_id, **run).code == "verified"
    emu.control.faults(token={"latency_ms": 150}, arm={"latency_ms": 150})  # the ten chains overlap
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    executions, _ = token_tests_execute(test_ids=_sweep_of(tenant_ids))
    assert [e.status for e in executions] == ["succeeded"] * 10
    assert not [r for r in caplog.records if "Connection pool is full" in r.getMessage()]


def test_a_forked_worker_process_opens_its_own_connections(portal_on_emulator):
    """Celery's prefork pool forks: the child's clients (also those inherited MSAL clients hold) must not write into
    the parent's TLS connections."""
    import os

    from exchange.http import outbound_session

    session = outbound_session()
    arm = f"{portal_on_emulator.info['base_url']}/subscriptions?api-version=2022-12-01"  # 401: no token, an answer
    assert session.get(arm).status_code == 401  # the parent holds a connection now
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, run nothing else of pytest's
        # The child's requests answer: it did not inherit the parent's connections (a shared TLS stream breaks both).
        ok = outbound_session() is session and all(session.get(arm).status_code == 401 for _ in range(3))
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert all(session.get(arm).status_code == 401 for _ in range(3))  # and the parent's still do
