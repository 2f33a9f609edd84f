"""Retries of the chain: transient faults are retried until success (honouring Retry-After, within bounds), permanent
errors are not, and a FIC just created is "propagating"."""

import pytest

from emulator import world as demo
from exchange import chain
from exchange.models import TokenTest
from exchange.services import token_test_execute


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
