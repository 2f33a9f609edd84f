"""The exchange chain against the emulator over real HTTPS: success, each misconfiguration and its diagnosis,
transient faults retried, permanent errors not, and no token left anywhere."""
import copy
import logging
import re
import threading
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import serializers
from django.db.backends.signals import connection_created

from emulator import world as demo
from exchange import chain
from exchange.demo import demo_seed
from exchange.models import TokenTest
from exchange.services import token_test_execute, token_test_start
from portal.services import Actor

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")


def _run(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        test = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    test.refresh_from_db()
    return test


@pytest.fixture
def run_for(portal_on_emulator, make_tenant, django_capture_on_commit_callbacks):
    def run(tenant_id, **fields):
        tenant = make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app, **fields)
        return _run(tenant, django_capture_on_commit_callbacks)

    return run


def test_consented_tenant_with_a_role_is_verified(run_for, portal_on_emulator):
    test = run_for(demo.FABRIKAM)
    assert (test.status, test.outcome, test.diagnosis_code, test.attempts) == ("succeeded", "verified", "verified", 1)
    steps = {s.name: s for s in test.steps.all()}
    assert list(steps) == ["imds", "home_token", "tenant_token", "arm_probe"] and all(s.ok for s in steps.values())
    assert steps["imds"].claims["sub"] == demo.MI_PRINCIPAL_ID
    assert steps["imds"].claims["aud"] == "fb60f99c-7a34-4190-8149-302f77469936"
    assert steps["tenant_token"].claims["tid"] == demo.FABRIKAM
    assert steps["tenant_token"].claims["aud"] == "https://management.azure.com"
    assert steps["tenant_token"].http_status == 200
    assert steps["arm_probe"].detail["subscriptions"][0]["name"] == "Fabrikam Production"
    tenant = test.tenant
    tenant.refresh_from_db()
    assert tenant.status == "verified" and tenant.verified_at and tenant.consecutive_failures == 0


def test_managed_identity_token_is_fetched_once_for_many_tenants(run_for, portal_on_emulator):
    portal_on_emulator.control.reset_requests()
    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND):
        run_for(tenant_id)
    counts = portal_on_emulator.control.requests()["by_endpoint"]
    assert counts["imds"] == 1
    assert counts["token"] == 6  # home + customer tenant, three tenants


@pytest.mark.parametrize("tenant_id, outcome, code", [
    (demo.NORTHWIND, "not_consented", "AADSTS700016"),
    (demo.TAILSPIN, "no_role", "no_role"),
    ("0badc0de-0000-4000-8000-000000000000", "tenant_not_found", "AADSTS90002"),
])
def test_tenant_side_problems_are_diagnosed(run_for, tenant_id, outcome, code):
    test = run_for(tenant_id)
    assert (test.status, test.outcome, test.diagnosis_code, test.attempts) == ("failed", outcome, code, 1)


def test_role_refused_by_arm_is_no_role(portal_on_emulator, run_for):
    portal_on_emulator.app.probe_resource_id = "/subscriptions/e1000000-0000-4000-8000-000000000003"
    portal_on_emulator.app.save()
    test = run_for(demo.TAILSPIN)
    probe = test.steps.get(name="arm_probe")
    assert (test.outcome, probe.http_status, probe.error) == ("no_role", 403, "AuthorizationFailed")


def _world_with_fic(**changes):
    world = demo.demo_world()
    fic = world["apps"][0]["fics"][0]
    fic.update(changes)
    return world


@pytest.mark.parametrize("fic_change, code", [
    ({"issuer": "https://login.microsoftonline.com/00000000-0000-4000-8000-000000000001/v2.0"}, "AADSTS700211"),
    ({"audiences": ["api://SomethingElse"]}, "AADSTS700212"),
    ({"subject": demo.MI_PRINCIPAL_ID.upper()}, "AADSTS700213"),
    ({"subject": "00000000-0000-4000-8000-00000000beef"}, "AADSTS70021"),
])
def test_fic_mistakes_are_diagnosed(make_emulator, portal_on_emulator, make_tenant, settings,
                                    django_capture_on_commit_callbacks, fic_change, code):
    emu = make_emulator(_world_with_fic(**fic_change))
    settings.ENTRA_BASE_URL, settings.IMDS_URL = emu.base_url, emu.imds_url
    chain.reset_clients()
    test = _run(make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app),
                django_capture_on_commit_callbacks)
    assert (test.outcome, test.diagnosis_code, test.attempts) == ("misconfigured", code, 1)
    failed = test.steps.get(ok=False)
    assert failed.name == "home_token" and failed.trace_id and failed.correlation_id


def test_no_fic_at_all_is_70021(make_emulator, portal_on_emulator, make_tenant, settings,
                                django_capture_on_commit_callbacks):
    world = demo.demo_world()
    world["apps"][0]["fics"] = []
    emu = make_emulator(world)
    settings.ENTRA_BASE_URL, settings.IMDS_URL = emu.base_url, emu.imds_url
    chain.reset_clients()
    test = _run(make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app),
                django_capture_on_commit_callbacks)
    assert test.diagnosis_code == "AADSTS70021"


def test_clock_skew_expires_the_assertion(portal_on_emulator, run_for):
    portal_on_emulator.control.clock(skew_seconds=2 * 86400)
    test = run_for(demo.FABRIKAM)
    assert (test.outcome, test.diagnosis_code) == ("misconfigured", "AADSTS700024")


def test_disabled_app_and_unknown_identity(portal_on_emulator, run_for):
    portal_on_emulator.control.disable_app(app_id=demo.APP_ID)
    assert run_for(demo.FABRIKAM).diagnosis_code == "AADSTS7000112"
    portal_on_emulator.control.disable_app(app_id=demo.APP_ID, disabled=False)
    identity = portal_on_emulator.identity
    identity.client_id = "99999999-9999-4999-8999-999999999999"
    identity.save()
    chain.reset_clients()
    test = run_for(demo.TAILSPIN)
    assert (test.outcome, test.diagnosis_code) == ("misconfigured", "IMDS:identity_not_found")
    assert test.steps.get().http_status == 400


def test_customer_side_blocks_are_diagnosed(portal_on_emulator, run_for):
    portal_on_emulator.control.block_by_conditional_access(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    test = run_for(demo.FABRIKAM)
    assert (test.outcome, test.diagnosis_code) == ("blocked", "AADSTS53003")
    portal_on_emulator.control.block_by_conditional_access(tenant=demo.FABRIKAM, app_id=demo.APP_ID, on=False)
    portal_on_emulator.control.disable_service_principal(tenant=demo.TAILSPIN, app_id=demo.APP_ID)
    assert run_for(demo.TAILSPIN).diagnosis_code == "AADSTS500014"


def test_no_identity_in_use(portal_on_emulator, run_for):
    portal_on_emulator.identity.in_use = False
    portal_on_emulator.identity.save()
    assert run_for(demo.FABRIKAM).diagnosis_code == "no_identity"


@pytest.mark.parametrize("kind, status", [("token", 503), ("token", 429), ("imds", 410), ("arm", 503),
                                          ("imds", 500), ("discovery", 503)])
def test_transient_faults_are_retried_until_success(portal_on_emulator, run_for, kind, status):
    portal_on_emulator.control.faults(**{kind: {"fail_next": 2, "fail_status": status, "retry_after": 0}})
    test = run_for(demo.FABRIKAM)
    assert (test.status, test.outcome, test.attempts) == ("succeeded", "verified", 3)
    assert test.steps.filter(ok=False).count() == 2 and test.steps.filter(attempt=3, ok=True).exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _single(portal_on_emulator, make_tenant, tenant_id=demo.FABRIKAM):
    tenant = make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app)
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    execution = token_test_execute(test_id=test.pk)
    test.refresh_from_db()
    return execution, test, list(test.steps.order_by("pk"))


def test_an_unreachable_imds_is_a_transient_failure_retried_later(portal_on_emulator, make_tenant, settings):
    settings.IMDS_URL = f"http://127.0.0.1:{_closed_port()}"
    execution, test, steps = _single(portal_on_emulator, make_tenant)
    assert execution.retry_in is not None and (test.status, test.not_before is not None) == ("queued", True)
    assert [(s.name, s.ok, s.error_code) for s in steps] == [("imds", False, "transient")]
    assert steps[0].message == "IMDS did not answer: the connection was refused or could not be made."


@pytest.mark.parametrize("kind, step, said", [
    ("discovery", "tenant_token", "No answer from Microsoft Entra ID for the tenant's metadata: it timed out."),
    ("token", "home_token", "No answer from the token endpoint: it timed out."),
    ("arm", "arm_probe", "No answer from Azure Resource Manager: it timed out."),
])
def test_an_endpoint_that_does_not_answer_in_time_is_a_transient_failure(portal_on_emulator, make_tenant, settings,
                                                                          kind, step, said):
    settings.ENTRA_HTTP_TIMEOUT = 0.3
    if kind == "discovery":  # the home tenant's client is built first: only the customer's metadata is slow
        chain.run(app=portal_on_emulator.app, identity=portal_on_emulator.identity, tenant_id=demo.TAILSPIN,
                  tenant_cloud="global")
    portal_on_emulator.control.faults(**{kind: {"latency_ms": 1500}})
    execution, test, steps = _single(portal_on_emulator, make_tenant)
    assert execution.retry_in is not None and test.status == "queued"
    assert (steps[-1].name, steps[-1].ok, steps[-1].error_code, steps[-1].message) == (step, False, "transient", said)
    portal_on_emulator.control.faults(**{kind: {"latency_ms": 0}})
    assert token_test_execute(test_id=test.pk).status == "succeeded"  # and the retry finds it answering again


def test_an_untrusted_certificate_is_said_in_plain_words(portal_on_emulator, make_tenant, settings):
    import certifi

    settings.ENTRA_CA_BUNDLE = certifi.where()  # public CAs only: the emulator's certificate is not among them
    execution, test, steps = _single(portal_on_emulator, make_tenant)
    assert steps[-1].name == "home_token" and steps[-1].error_code == "transient"
    assert "the TLS handshake failed: is the server's certificate trusted?" in steps[-1].message


def test_retries_are_bounded(portal_on_emulator, run_for, settings):
    portal_on_emulator.control.faults(token={"fail_next": 50, "fail_status": 503, "retry_after": 0})
    test = run_for(demo.FABRIKAM)
    assert (test.status, test.outcome, test.diagnosis_code) == ("failed", "transient", "transient")
    assert test.attempts == settings.TOKEN_TEST_MAX_ATTEMPTS


def test_permanent_errors_are_not_retried(portal_on_emulator, run_for):
    portal_on_emulator.control.reset_requests()
    test = run_for(demo.NORTHWIND)
    assert test.attempts == 1
    assert portal_on_emulator.control.requests()["by_endpoint"]["token"] == 2  # home proof + one try, no retry


def test_retry_after_is_honoured(portal_on_emulator, make_tenant, settings):
    portal_on_emulator.control.faults(token={"fail_next": 1, "fail_status": 429, "retry_after": 37})
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    execution = token_test_execute(test_id=test.pk)
    test.refresh_from_db()
    assert execution.retry_in == 37 and test.status == "queued" and test.not_before is not None
    settings.TOKEN_TEST_RETRY_BASE_SECONDS = 50
    portal_on_emulator.control.faults(token={"fail_next": 1, "fail_status": 503, "retry_after": 1})
    test.refresh_from_db()
    assert token_test_execute(test_id=test.pk, now=test.not_before).retry_in == 100  # 50 * 2**(2-1) > Retry-After


def test_70021_right_after_a_fic_was_created_is_propagating(portal_on_emulator, make_tenant):
    from django.utils import timezone

    from exchange.models import FederatedCredential

    portal_on_emulator.control.fic_propagation(600)
    world = portal_on_emulator.emulator.world
    with world.lock:  # as if the FIC had just been created through Graph
        world.fic_created_at[world.data["apps"][0]["fics"][0]["id"]] = __import__("time").time()
    FederatedCredential.objects.create(home_app=portal_on_emulator.app, graph_id="x", name="keyless-worker",
                                       issuer="i", subject="s", audiences=["a"], created_by_portal_at=timezone.now())
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = TokenTest.objects.create(tenant=tenant, trigger="consent")
    execution = token_test_execute(test_id=test.pk)
    test.refresh_from_db()
    assert execution.retry_in == 60 and (test.status, test.outcome) == ("queued", "propagating")


def test_no_token_is_stored_or_logged(run_for, portal_on_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    run_for(demo.FABRIKAM)
    run_for(demo.NORTHWIND)
    dump = "".join(serializers.serialize("json", model.objects.all()) for model in apps.get_models())
    assert "Fabrikam Production" in dump  # the probe's findings are there...
    assert not JWT.search(dump)  # ...but no token
    assert caplog.records and not JWT.search(caplog.text)


def test_demo_seed_is_idempotent(portal_on_emulator):
    app, identity = demo_seed(portal_on_emulator.info)
    assert (app.pk, identity.pk) == (portal_on_emulator.app.pk, portal_on_emulator.identity.pk)
    assert copy.copy(app.client_id) and str(identity.principal_id) == demo.MI_PRINCIPAL_ID


def test_a_tenants_discovery_is_fetched_once_for_all_worker_processes(portal_on_emulator, make_tenant,
                                                                      django_capture_on_commit_callbacks):
    from django.core.cache import cache

    cache.clear()
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    assert _run(tenant, django_capture_on_commit_callbacks).outcome == "verified"
    chain.reset_clients()  # as a second worker process would start: no MSAL client, no MSAL cache
    portal_on_emulator.control.reset_requests()
    assert _run(tenant, django_capture_on_commit_callbacks).outcome == "verified"
    counts = portal_on_emulator.control.requests()["by_endpoint"]
    assert "discovery" not in counts and counts["token"] == 2


def test_a_sweep_counts_every_outcome_and_closes_once(portal_on_emulator, make_tenant,
                                                      django_capture_on_commit_callbacks):
    from exchange.models import Sweep
    from onboarding.services import sweep_all_start
    from portal.models import AuditEvent

    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND):
        make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app)
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            sweep = sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.system("test"))
        sweep.refresh_from_db()
        assert (sweep.total, sweep.done, sweep.succeeded, sweep.failed) == (3, 3, 1, 2)
        assert sweep.finished_at is not None
        finished = AuditEvent.objects.filter(action="sweep.finished", target_id=str(sweep.pk))
        assert [e.detail for e in finished] == [{"total": 3, "succeeded": 1, "failed": 2}]
        assert AuditEvent.objects.order_by("-seq").first().action == "sweep.finished"  # after its tests' events
    # Each tenant's outcome is audited when it changes (the first sweep), not again when it stays the same.
    assert AuditEvent.objects.filter(action="tokentest.finished").count() == 3


def test_a_sweep_reads_the_worker_identity_once_per_window(portal_on_emulator):
    from exchange.selectors import worker_identity

    app, identity = portal_on_emulator.app, portal_on_emulator.identity
    assert worker_identity(app, max_age=60) == identity
    identity.in_use = False
    identity.save()
    assert worker_identity(app, max_age=60) == identity  # a sweep's tests reuse this process's read...
    assert worker_identity(app) is None  # ...a manual test reads afresh
    assert worker_identity(app, max_age=60) is None  # and its read is what the next sweep test sees


def _batch(portal_on_emulator, make_tenant, *tenant_ids, sweep=None):
    tests = [TokenTest.objects.create(tenant=make_tenant(tenant_id=t, home_app=portal_on_emulator.app),
                                      trigger="sweep", sweep=sweep) for t in tenant_ids]
    return [t.pk for t in tests]


def test_a_batch_records_each_test_as_a_single_test_would(portal_on_emulator, make_tenant):
    from exchange.services import token_tests_execute

    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)
    executions, unstarted = token_tests_execute(test_ids=ids)
    assert unstarted == [] and [e.test_id for e in executions] == ids
    by_id = {t.pk: t for t in TokenTest.objects.filter(pk__in=ids)}
    outcomes = [(by_id[i].status, by_id[i].outcome, by_id[i].attempts) for i in ids]
    assert outcomes == [("succeeded", "verified", 1), ("failed", "no_role", 1), ("failed", "not_consented", 1)]
    assert [e.status for e in executions] == ["succeeded", "failed", "failed"]
    assert [by_id[i].steps.count() for i in ids] == [4, 4, 3]  # NORTHWIND stops at the customer-tenant token
    tenants = {t.tenant.tenant_id: t.tenant for t in by_id.values()}
    for tenant in tenants.values():
        tenant.refresh_from_db()
    assert tenants[uuid.UUID(demo.FABRIKAM)].last_success_at is not None
    assert tenants[uuid.UUID(demo.TAILSPIN)].consecutive_failures == 1
    assert tenants[uuid.UUID(demo.NORTHWIND)].last_outcome == "not_consented"
    # Delivered again, the batch claims nothing and writes nothing.
    assert token_tests_execute(test_ids=ids) == ([], [])
    assert sum(by_id[i].steps.count() for i in ids) == 11


def test_a_batch_runs_its_chains_side_by_side_with_one_imds_call_and_one_home_proof(portal_on_emulator, make_tenant):
    from exchange.models import Sweep, TokenTestStep
    from exchange.services import token_tests_execute

    portal_on_emulator.control.faults(token={"latency_ms": 200}, arm={"latency_ms": 200})
    portal_on_emulator.control.reset_requests()
    sweep = Sweep.objects.create(trigger="manual", total=3)
    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND, sweep=sweep)
    opened_by = []
    record = lambda **kwargs: opened_by.append(threading.current_thread().name)  # noqa: E731
    connection_created.connect(record)
    try:
        executions, _ = token_tests_execute(test_ids=ids)
    finally:
        connection_created.disconnect(record)
    assert not [name for name in opened_by if name.startswith("chain")]  # the chains' threads never touch the database
    assert [e.status for e in executions] == ["succeeded", "failed", "failed"]
    # Every customer exchange began before any of them ended: the three waited for Entra at the same time.
    spans = [(s.started_at, s.started_at + timedelta(milliseconds=s.duration_ms))
             for s in TokenTestStep.objects.filter(test_id__in=ids, name="tenant_token")]
    assert len(spans) == 3 and max(start for start, _ in spans) < min(end for _, end in spans)
    # Yet the process asked IMDS once and proved the FIC in its home tenant once, for all three.
    counts = portal_on_emulator.control.requests()["by_endpoint"]
    assert (counts["imds"], counts["token"]) == (1, 4)
    homes = TokenTestStep.objects.filter(test_id__in=ids, name="home_token")
    assert sorted(h.detail.get("source", "wire") for h in homes) == ["proven earlier by this worker"] * 2 + ["wire"]
    sweep.refresh_from_db()
    assert (sweep.done, sweep.succeeded, sweep.failed) == (3, 1, 2) and sweep.finished_at


def test_a_transient_failure_in_a_batch_is_retried_as_a_task_of_its_own(portal_on_emulator, make_tenant,
                                                                         django_capture_on_commit_callbacks, settings):
    from exchange.services import token_tests_execute_and_requeue

    settings.TOKEN_TEST_RETRY_BASE_SECONDS = 0
    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN)
    portal_on_emulator.control.faults(arm={"fail_next": 1, "fail_status": 503, "retry_after": 0})
    with django_capture_on_commit_callbacks(execute=True):
        token_tests_execute_and_requeue(test_ids=ids)
    first, second = TokenTest.objects.filter(pk__in=ids).order_by("pk")
    assert (first.status, first.outcome, second.status, second.outcome) == ("succeeded", "verified", "failed", "no_role")
    # The chains run side by side, so either may have met the 503: that one ran twice, with a retried step.
    assert sorted([first.attempts, second.attempts]) == [1, 2]
    retried = first if first.attempts == 2 else second
    assert list(retried.steps.filter(name="arm_probe").order_by("attempt").values_list("attempt", "http_status")) == [
        (1, 503), (2, 200)]


def test_a_batch_past_its_time_budget_sends_the_rest_on_their_own(portal_on_emulator, make_tenant,
                                                                  django_capture_on_commit_callbacks, settings):
    from exchange.services import token_tests_execute, token_tests_execute_and_requeue

    ids = _batch(portal_on_emulator, make_tenant, demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)
    executions, unstarted = token_tests_execute(test_ids=ids, budget_seconds=1e-9)
    assert [e.test_id for e in executions] == ids[:1] and unstarted == ids[1:]  # one always runs
    left = TokenTest.objects.filter(pk__in=unstarted)
    assert set(left.values_list("status", "attempts", "started_at")) == {("queued", 0, None)}  # as they were
    settings.TOKEN_TEST_BATCH_SECONDS = 1e-9
    with django_capture_on_commit_callbacks(execute=True):
        token_tests_execute_and_requeue(test_ids=ids)  # the first is done: the next runs, the last goes out alone
    statuses = dict(TokenTest.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ids[0]: "succeeded", ids[1]: "failed", ids[2]: "failed"}


def test_a_worker_keeps_at_most_entra_clients_max_msal_clients(portal_on_emulator, make_tenant, settings,
                                                                django_capture_on_commit_callbacks):
    from exchange import entra

    settings.ENTRA_CLIENTS_MAX = 2
    tenants = [make_tenant(tenant_id=t, home_app=portal_on_emulator.app)
               for t in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]
    for tenant in tenants:
        _run(tenant, django_capture_on_commit_callbacks)
    # The home tenant's client and the last customer's are kept; the least recently used ones were dropped...
    assert {key[1] for key in entra._apps} == {demo.HOME, demo.NORTHWIND}
    # ...and a dropped tenant is simply served by a new client.
    assert _run(tenants[0], django_capture_on_commit_callbacks).outcome == "verified"
    assert {key[1] for key in entra._apps} == {demo.HOME, demo.FABRIKAM}


def test_redact_keeps_only_the_non_secret_claims_and_survives_garbage():
    import jwt

    token = jwt.encode({"iss": "https://sts.windows.net/t/", "aud": "https://management.azure.com/", "roles": ["R"],
                        "exp": 5, "xms_cc": ["cp1"], "uti": "u"}, "k" * 32, algorithm="HS256")
    assert chain.redact(token) == {"iss": "https://sts.windows.net/t/", "aud": "https://management.azure.com/",
                                   "roles": ["R"], "exp": 5}
    for garbage in ("", "not-a-jwt", "a.!!!.c", "a.W10.c", "a.bm90IGpzb24.c"):  # W10 = "[]", the last "not json"
        assert chain.redact(garbage) == {}


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
